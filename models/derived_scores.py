"""Frame and host scores, derived from the scores of the windows that cover them.

The rule is part of the score contract in ``models``. A row's score (a frame,
or a flow for flow feature sets) is the largest score of the windows that
contain it. A host's score is the largest score of the frames it sent or
received.
Taking the maximum keeps the flags consistent at every level. A frame scores
above the threshold exactly when at least one window that contains it is
flagged, which is the set of frames the score flow exports. A host scores above
it exactly when it took part in such a frame. Rows that no window contains
(the last rows of a segment past the last full window) get no score.

Nothing here imports Prefect, Spark or TensorFlow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def covering_max(window_scores: np.ndarray, rows: int, *, length: int, stride: int) -> np.ndarray:
    """Return, per row of one segment, the largest score of the windows that contain it.

    Window ``i`` of the segment contains rows ``i * stride`` to
    ``i * stride + length - 1``, as the windows job cuts them.

    Args:
        window_scores: [windows] scores of the segment's windows, in window order.
        rows: rows in the segment, at least ``(windows - 1) * stride + length``
            when there are windows.
        length: rows per window, at least 1.
        stride: rows between window starts, at least 1.

    Returns:
        float64 array [rows]; NaN for a row that no window contains.

    Raises:
        ValueError: for a length or stride below 1, or fewer rows than the
            windows span.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be at least 1, got {length} and {stride}")
    scores = np.asarray(window_scores, dtype=np.float64)
    windows = scores.size
    if windows and rows < (windows - 1) * stride + length:
        raise ValueError(f"{windows} windows of {length} rows every {stride} span more than the segment's {rows} rows; "
                         "pass the row count of the segment the windows were cut from")

    result = np.full(rows, np.nan)
    if windows == 0:
        return result

    position = np.arange(rows)
    # Row r lies in windows floor(r / stride) - j for j = 0, 1, ... as long as that window still reaches r.
    for back in range(-(-length // stride)):
        window = position // stride - back
        inside = (window >= 0) & (window < windows) & (window * stride + length > position)
        candidate = np.where(inside, scores[np.clip(window, 0, windows - 1)], np.nan)
        result = np.fmax(result, candidate)
    return result


def host_scores(frame_scores: pd.DataFrame, addresses: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Return each address's score: the largest score of the scored frames it sent or received.

    Every host in a window shares that window's score, so many hosts can tie
    on the largest score. The table breaks ties by the frames each host has
    above the threshold, because a host in more flagged traffic comes first
    for an analyst, and then by address.

    Args:
        frame_scores: ``frame_number`` and ``score``, one row per scored frame.
        addresses: ``frame_number``, ``src_addr`` and ``dst_addr`` of the
            capture's frames; a null address is left out.
        threshold: the model's threshold; a frame above it is flagged.

    Returns:
        Columns ``address``, ``score``, ``frames`` (scored frames that the
        address sent or received), ``flagged_frames`` (those above the
        threshold), ``top_frame`` (the first frame with the host's score) and
        ``flagged`` (score above the threshold), in the order above.
    """
    scored = addresses.merge(frame_scores[["frame_number", "score"]], on="frame_number", how="inner")
    ends = pd.concat(
        [scored[["src_addr", "frame_number", "score"]].rename(columns={"src_addr": "address"}),
         scored[["dst_addr", "frame_number", "score"]].rename(columns={"dst_addr": "address"})],
        ignore_index=True,
    ).dropna(subset=["address"])
    # A frame sent to its own address counts once for that address.
    ends = ends.drop_duplicates(["address", "frame_number"])
    if ends.empty:
        return pd.DataFrame({
            "address": pd.Series(dtype=object), "score": pd.Series(dtype=np.float64), "frames": pd.Series(dtype=np.int64),
            "flagged_frames": pd.Series(dtype=np.int64), "top_frame": pd.Series(dtype=np.int64), "flagged": pd.Series(dtype=bool),
        })

    ends = ends.assign(above=ends["score"].to_numpy() > threshold)
    ends = ends.sort_values(["address", "score", "frame_number"], ascending=[True, False, True], kind="stable")
    grouped = ends.groupby("address", sort=False)
    top = grouped.first()
    table = pd.DataFrame({
        "address": top.index.astype(str),
        "score": top["score"].to_numpy(np.float64),
        "frames": grouped.size().reindex(top.index).to_numpy(np.int64),
        "flagged_frames": grouped["above"].sum().reindex(top.index).to_numpy(np.int64),
        "top_frame": top["frame_number"].to_numpy(np.int64),
    })
    table["flagged"] = table["score"].to_numpy() > threshold
    order = ["score", "flagged_frames", "address"]
    return table.sort_values(order, ascending=[False, False, True], kind="stable").reset_index(drop=True)
