"""The data a report is built from, and the checks that run before anything is drawn.

The flows fill these dataclasses from storage and call ``reports.render_report``. Nothing
here imports Prefect, Spark or TensorFlow, so a report can be rebuilt from saved
artifacts on any machine with numpy, pandas, matplotlib and jinja2.

Score contract: a window's score is its mean squared reconstruction error (unitless, in
the scaled feature space). Higher means more anomalous, and a window is flagged when its
score is strictly greater than the model's threshold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

PACKET_COLUMNS_USED: tuple[str, ...] = (
    "src_addr",
    "dst_addr",
    "frame_len",
    "timestamp_ns",
    "protocol",
)
"""Packet table columns that the report reads. The table may have more."""

CAPTURE_STATUSES: tuple[str, ...] = ("decoded", "set aside")

EXPECTED_MODEL_KINDS: tuple[str, ...] = ("lstm", "conv1d")
"""Model kinds that every training run produces. A missing one gets a note in the report."""

_KIND_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class ModelSection:
    """One trained model's threshold, window scores and evaluation.

    Attributes:
        kind: Model kind, e.g. "lstm" or "conv1d". Lower-case letters, digits, "_" and
            "-" only, because it becomes part of the plot ids.
        version: Model version (the run id that trained it).
        threshold: Reconstruction-MSE threshold. A window with score > threshold is
            anomalous.
        threshold_method: Name of the rule that set the threshold, e.g. "mean_k_std".
        threshold_params: Parameters of that rule, e.g. {"k": 3.0, "mean": ..., "std": ...}.
        window_start_ns: [windows] int64 start time of each evaluated window, ns since
            the Unix epoch (UTC).
        window_scores: [windows] float reconstruction MSE of each window.
        window_labels: [windows] 0 (normal) or 1 (anomalous), or None without labels.
        metrics: accuracy, precision, recall and f1 for the anomaly class, or
            flagged_share without labels. Values are fractions in [0, 1].
        confusion: [[tn, fp], [fn, tp]] window counts with the anomaly class as the
            positive class, or None without labels.
        training_history: Keras history, e.g. {"loss": [...], "val_loss": [...]}, one
            value per epoch. None when the model was not trained in this run.
        false_alarms: the threshold's promised false-alarm rate beside the
            rates measured in the calibration period and later, as
            ``models.threshold_checks.false_alarm_check`` returns them. None
            when they were not measured.
    """

    kind: str
    version: str
    threshold: float
    threshold_method: str
    threshold_params: dict
    window_start_ns: np.ndarray
    window_scores: np.ndarray
    window_labels: np.ndarray | None
    metrics: dict[str, float]
    confusion: list[list[int]] | None
    training_history: dict[str, list[float]] | None
    false_alarms: dict | None = None


@dataclass
class CaptureEntry:
    """One capture of the run and what happened to it.

    Attributes:
        capture_id: Identifier of the capture, which is the packet table's partition key.
        source_key: Storage key the capture was read from.
        frames: Frames decoded from the capture (0 for a capture set aside before any).
        status: "decoded" or "set aside".
        reason: Why the capture was set aside, or None for a decoded capture.
    """

    capture_id: str
    source_key: str
    frames: int
    status: str
    reason: str | None


@dataclass
class ReportInputs:
    """Everything one report shows.

    Attributes:
        title: Document title.
        run_id: Id of the run that produced the report.
        created_utc: Timezone-aware creation time, shown in UTC.
        captures: Every capture of the run, decoded or set aside.
        packets: Packet table with at least the columns in ``PACKET_COLUMNS_USED``.
            ``timestamp_ns`` is ns since the Unix epoch (UTC), ``frame_len`` is bytes
            on the wire. Zero rows is allowed.
        models: One section per model kind; an expected kind may be missing.
        links: Artifact name to storage location (models, packet table,
            validations). Locations are shown as text, never as links.
    """

    title: str
    run_id: str
    created_utc: datetime
    captures: list[CaptureEntry]
    packets: pd.DataFrame
    models: list[ModelSection]
    links: dict[str, str]


def validate_inputs(inputs: ReportInputs) -> None:
    """Raise ValueError when the inputs break a contract documented on the dataclasses.

    The message names the field, the model kind or capture id involved, the value
    received and what is expected.
    """
    if inputs.created_utc.tzinfo is None or inputs.created_utc.utcoffset() is None:
        raise ValueError(
            f"created_utc must be timezone-aware, got naive {inputs.created_utc.isoformat()}. "
            "Pass an aware time such as datetime.now(timezone.utc)."
        )

    missing = [name for name in PACKET_COLUMNS_USED if name not in inputs.packets.columns]
    if missing:
        raise ValueError(
            f"packets is missing column(s) {missing}. The report needs {list(PACKET_COLUMNS_USED)}."
        )

    for capture in inputs.captures:
        _validate_capture(capture)

    seen_kinds: set[str] = set()
    for model in inputs.models:
        if model.kind in seen_kinds:
            raise ValueError(f"models has two sections of kind {model.kind!r}. Give one section per kind.")
        seen_kinds.add(model.kind)
        _validate_model(model)


def _validate_capture(capture: CaptureEntry) -> None:
    if capture.status not in CAPTURE_STATUSES:
        raise ValueError(
            f"capture {capture.capture_id!r} has invalid status {capture.status!r}. "
            f"Expected one of {list(CAPTURE_STATUSES)}."
        )
    if capture.frames < 0:
        raise ValueError(
            f"capture {capture.capture_id!r} has invalid frames={capture.frames}. Expected 0 or more."
        )


def _validate_model(model: ModelSection) -> None:
    if not _KIND_PATTERN.match(model.kind):
        raise ValueError(
            f"model kind {model.kind!r} is invalid. Use lower-case letters, digits, '_' and '-'."
        )
    if not math.isfinite(model.threshold):
        raise ValueError(f"model {model.kind!r} has invalid threshold {model.threshold}. Expected a finite number.")

    starts = np.asarray(model.window_start_ns)
    scores = np.asarray(model.window_scores)
    if starts.ndim != 1 or scores.ndim != 1 or starts.shape != scores.shape:
        raise ValueError(
            f"model {model.kind!r}: window_start_ns has shape {starts.shape} and window_scores "
            f"has shape {scores.shape}. Expected two 1-D arrays of one length."
        )

    if model.window_labels is not None:
        labels = np.asarray(model.window_labels)
        if labels.shape != scores.shape:
            raise ValueError(
                f"model {model.kind!r}: window_labels has shape {labels.shape}, "
                f"window_scores has shape {scores.shape}. Expected one label per window."
            )
        unexpected = np.setdiff1d(np.unique(labels), [0, 1])
        if unexpected.size:
            raise ValueError(
                f"model {model.kind!r}: window_labels contains {unexpected[:5].tolist()}. "
                "Expected only 0 (normal) and 1 (anomalous)."
            )

    if model.confusion is not None:
        matrix = np.asarray(model.confusion)
        if matrix.shape != (2, 2) or (matrix < 0).any():
            raise ValueError(
                f"model {model.kind!r}: confusion is {model.confusion!r}. "
                "Expected [[tn, fp], [fn, tp]] with counts of 0 or more."
            )
