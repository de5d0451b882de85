"""Windows of a scored capture, mapped back to the frames, hosts and features behind their scores.

The windows job stores, per window, its segment (``host`` in host window mode)
and its index in that segment, but not the frame numbers it covers. The
score flow keeps the feature-row metadata it cut the windows from, and
``WindowFrames`` repeats the cut on that metadata to list each window's frames.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from models.datasets import WindowReader
from models.derived_scores import covering_max
from objectstore import ObjectStore
from spark_jobs.features import Preprocessing, feature_set

ROW_FRAME_COLUMNS = ("host", "first_frame", "last_frame", "start_ns")
"""Feature-row metadata columns that ``WindowFrames`` needs."""


def window_hosts(store: ObjectStore, parts: list[str]) -> list[str | None]:
    """Return the ``host`` column of the window parts, in ``WindowReader`` order (null outside host mode)."""
    hosts: list[str | None] = []
    for key in parts:
        with store.open_read(key) as stream:
            table = pq.read_table(io.BytesIO(stream.read()), columns=["host"])
        hosts.extend(table.column("host").to_pylist())
    return hosts


def feature_errors(model, reader: WindowReader, positions: np.ndarray) -> np.ndarray:
    """Return the mean squared reconstruction error of each feature over the steps of chosen windows.

    Args:
        model: the autoencoder.
        reader: the window reader; positions count windows in its ``iter_windows`` order.
        positions: 0-based window positions.

    Returns:
        float64 array [len(positions), features], rows in the order of
        ``positions``. The mean of a row is the window's score.
    """
    if len(positions) == 0:
        return np.zeros((0, reader.features))
    row_of_position = {int(position): row for row, position in enumerate(positions)}
    chosen = np.zeros((len(positions), reader.steps, reader.features), dtype=np.float32)
    offset = 0
    for block in reader.iter_windows():
        for index in range(len(block)):
            if offset + index in row_of_position:
                chosen[row_of_position[offset + index]] = block[index]
        offset += len(block)
    reconstruction = np.asarray(model(chosen, training=False))
    return np.mean((chosen - reconstruction) ** 2, axis=1, dtype=np.float64)


class WindowFrames:
    """Maps the windows of one window set back to the frames they cover.

    Windows are cut per segment from feature rows ordered by (``start_ns``,
    ``first_frame``): window ``i`` of a segment covers rows ``i * stride`` to
    ``i * stride + length - 1``. A segment is the whole capture, or one host in
    ``host`` window mode.

    Args:
        rows: feature-row metadata with ``ROW_FRAME_COLUMNS``.
        state: the preprocessing state the windows were cut with.
    """

    def __init__(self, rows: pd.DataFrame, state: Preprocessing) -> None:
        self.length = state.window_length
        self.stride = state.window_stride
        self._host_mode = state.window_mode == "host"
        self._frame_rows = feature_set(state.feature_set).row_unit == "frame"
        ordered = rows.sort_values(["start_ns", "first_frame"], kind="stable")
        if self._host_mode:
            self._segments = {host: group for host, group in ordered.groupby("host", dropna=False, sort=False)}
        else:
            self._segments = {None: ordered}

    def frames(self, window_index: int, host: str | None = None) -> list[int]:
        """Return the frame numbers of one window, in time order.

        NOTE: for flow rows this is the first and last frame of each flow in the
        window, not every frame of the flows, because the row metadata contains
        only those two.
        """
        segment = self._segments.get(host if self._host_mode else None)
        if segment is None:
            return []
        start = window_index * self.stride
        members = segment.iloc[start:start + self.length]
        if self._frame_rows:
            return members["first_frame"].astype(np.int64).tolist()
        numbers = np.concatenate([members["first_frame"].to_numpy(np.int64), members["last_frame"].to_numpy(np.int64)])
        return sorted(set(numbers.tolist()))

    def frame_scores(self, windows: pd.DataFrame) -> pd.DataFrame:
        """Return the score of every frame that a window contains, by the rule of ``models.derived_scores``.

        Args:
            windows: one model's scored windows: ``window_index``, ``host``
                (null outside ``host`` mode) and ``score``.

        Returns:
            Columns ``frame_number`` and ``score``, in frame order. For flow rows
            the frames are the first and last frame of each flow (see ``frames``).
        """
        pieces = []
        for host, segment in self._segments.items():
            if self._host_mode:
                mine = windows[windows["host"].isna()] if pd.isna(host) else windows[windows["host"] == host]
            else:
                mine = windows
            by_index = np.full(int(mine["window_index"].max()) + 1 if len(mine) else 0, np.nan)
            by_index[mine["window_index"].to_numpy(np.int64)] = mine["score"].to_numpy(np.float64)
            scores = covering_max(by_index, len(segment), length=self.length, stride=self.stride)
            columns = ["first_frame"] if self._frame_rows else ["first_frame", "last_frame"]
            for column in columns:
                pieces.append(pd.DataFrame({"frame_number": segment[column].to_numpy(np.int64), "score": scores}))

        if not pieces:
            return pd.DataFrame({"frame_number": pd.Series(dtype=np.int64), "score": pd.Series(dtype=np.float64)})
        table = pd.concat(pieces, ignore_index=True).dropna(subset=["score"])
        return table.groupby("frame_number", as_index=False)["score"].max().sort_values("frame_number", kind="stable")


def frame_comments(kind: str, flagged: pd.DataFrame, mapping: WindowFrames, threshold: float) -> dict[int, str]:
    """Return the comment of every frame inside a window that one model flagged.

    A frame in several flagged windows gets the comment of the highest-scoring one.

    Args:
        kind: model kind, named in the comment.
        flagged: the model's flagged windows (``window_index``, ``host``, ``score``).
        mapping: maps those windows to frames.
        threshold: the model's threshold.

    Returns:
        Frame number -> comment such as
        ``netae lstm: window 12 score 0.0321 > threshold 0.0104``.
    """
    comments: dict[int, str] = {}
    ordered = flagged.sort_values("score", ascending=True, kind="stable")
    for window in ordered.itertuples(index=False):
        host = window.host if isinstance(window.host, str) else None
        text = f"netae {kind}: window {_window_name(int(window.window_index), host)} score {window.score:.6g} > threshold {threshold:.6g}"
        for number in mapping.frames(int(window.window_index), host):
            comments[number] = text
    return comments


def _window_name(window_index: int, host: str | None) -> str:
    return str(window_index) if host is None else f"{window_index} of host {host}"
