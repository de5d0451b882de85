"""The data an ad hoc score report is built from, and its keyed-pseudonym variant.

The ``score`` flow fills these dataclasses and calls
``reports.score_report.render_score_report``. Like the rest of ``reports``, nothing
here imports Prefect, Spark or TensorFlow.

Score contract (the same as the run report's): a window's score is its mean squared
reconstruction error in the scaled feature space, unitless. Higher means more
anomalous, and a window is flagged when its score is strictly greater than the
model's threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from reports.inputs import ModelSection
from reports.pseudonyms import Pseudonymizer

FRAME_COLUMNS: tuple[str, ...] = ("frame_number", "timestamp_ns", "src_addr", "dst_addr", "protocol", "frame_len")
"""Packet-table columns of ``ScoreReportInputs.frames``."""


@dataclass
class FlaggedWindow:
    """One window above its model's threshold, with what the analyst needs to find it.

    Attributes:
        kind: model kind that flagged it.
        window_index: 0-based index of the window in time order within its segment
            (the capture, or one host in ``host`` window mode).
        score: the window's reconstruction MSE under that model.
        threshold: that model's threshold; ``score > threshold``.
        start_ns: capture time of the window's first frame, ns since the Unix epoch (UTC).
        end_ns: capture time of its last frame, likewise.
        frame_numbers: Wireshark frame numbers of its frames, in window (time) order.
        top_features: up to three (feature name, mean squared error of that feature
            over the window's steps) pairs, largest first: the features the model
            reconstructed worst.
    """

    kind: str
    window_index: int
    score: float
    threshold: float
    start_ns: int
    end_ns: int
    frame_numbers: list[int]
    top_features: list[tuple[str, float]]


@dataclass
class ScoreReportInputs:
    """Everything one ad hoc score report shows.

    Attributes:
        title: document title.
        run_id: id of the score run.
        created_utc: timezone-aware creation time, shown in UTC.
        capture_key: storage key of the scored capture.
        capture_frames: frames decoded from it.
        window_length: rows per window, from the champions' preprocessing.
        window_stride: rows between window starts.
        packets: packet table of the capture (``src_addr``, ``dst_addr``,
            ``frame_len``, ``timestamp_ns``, ``protocol``), possibly the first rows
            only, for the traffic plots and host summaries.
        models: one section per champion model, scores of every window of the capture.
        flagged: the top flagged windows of every model, highest score first per model.
        frames: rows with ``FRAME_COLUMNS`` for every frame listed in the report:
            the frames of ``flagged``, or the first frames of a capture too short
            for one window.
        frame_info: frame number -> Wireshark's Info column for that frame.
        display_filter: Wireshark display filter that selects the flagged frames in
            the original capture, or None when no frame was flagged.
        export_location: where the pcapng of the flagged frames is stored, or None.
        exported_frames: frames written to that pcapng.
        host_scores: model kind -> the scores of every host, in the order of
            ``models.derived_scores.host_scores``, with ``address``, ``score``
            (the largest score of the frames the address sent or received),
            ``frames``, ``flagged_frames`` and ``top_frame``.
        notes: facts the analyst must know (a capture shorter than one window, frame
            bytes that could not be exported), as plain sentences.
        links: artifact name -> storage location, shown as text.
        pseudonymized: whether IP and MAC addresses were replaced by keyed pseudonyms.
        row_unit: what one window row is, ``frame`` or ``flow`` (the feature set's unit).
    """

    title: str
    run_id: str
    created_utc: datetime
    capture_key: str
    capture_frames: int
    window_length: int
    window_stride: int
    packets: pd.DataFrame
    models: list[ModelSection]
    flagged: list[FlaggedWindow]
    frames: pd.DataFrame
    frame_info: dict[int, str] = field(default_factory=dict)
    display_filter: str | None = None
    export_location: str | None = None
    exported_frames: int = 0
    flagged_frame_numbers: list[int] = field(default_factory=list)
    host_scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)
    pseudonymized: bool = False
    row_unit: str = "frame"


def pseudonymize_inputs(inputs: ScoreReportInputs, pseudonymizer: Pseudonymizer) -> ScoreReportInputs:
    """Return a copy of ``inputs`` whose IP and MAC addresses are keyed pseudonyms.

    Replaced: the address columns of ``packets`` and ``frames`` (``src_addr``,
    ``dst_addr``, ``src_mac``, ``dst_mac`` where present) and every address inside
    the Info column text. Host names (a DNS query name in the Info column) are not
    addresses and stay as they are.
    """
    return dataclasses.replace(
        inputs,
        packets=_pseudonymize_columns(inputs.packets, pseudonymizer),
        frames=_pseudonymize_columns(inputs.frames, pseudonymizer),
        frame_info={number: pseudonymizer.text(text) for number, text in inputs.frame_info.items()},
        host_scores={kind: table.assign(address=pseudonymizer.column(table["address"])) for kind, table in inputs.host_scores.items()},
        pseudonymized=True,
    )


def _pseudonymize_columns(frame: pd.DataFrame, pseudonymizer: Pseudonymizer) -> pd.DataFrame:
    result = frame.copy()
    for column in ("src_addr", "dst_addr", "src_mac", "dst_mac"):
        if column in result.columns:
            result[column] = pseudonymizer.column(result[column])
    return result
