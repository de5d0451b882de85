"""Rows of the report's tables, as plain strings for the template to escape.

Nothing here builds HTML. Values are formatted once so that the template only places
them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.threshold_checks import bulk_shift_text
from reports.inputs import EXPECTED_MODEL_KINDS, CaptureEntry, ModelSection

TOP_PROTOCOLS = 10
MISSING_VALUE = "n/a"

METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("pr_auc", "PR-AUC"),
    ("roc_auc", "ROC-AUC"),
    ("flagged_share", "share flagged"),
    ("isolation_forest_pr_auc", "IsolationForest PR-AUC"),
    ("zscore_pr_auc", "z-score PR-AUC"),
    ("champion_pr_auc", "champion PR-AUC"),
    ("oracle_f1", "oracle F1 (threshold chosen with labels)"),
    ("promoted", "promoted"),
)
"""(key in ModelSection.metrics, column heading) for each metric column."""


@dataclass(frozen=True)
class MetricsRow:
    """One model's line in the metrics table."""

    kind: str
    version: str
    windows: int
    flagged: str
    threshold: str
    method: str
    metrics: list[str]


@dataclass(frozen=True)
class FalseAlarmRow:
    """One model's promised false-alarm rate beside the rates measured on normal windows."""

    kind: str
    method: str
    promised: str
    same_period: str
    later_period: str


def false_alarm_row(model: ModelSection) -> FalseAlarmRow | None:
    """Format one model's false-alarm check, or return None when the model has none."""
    check = model.false_alarms
    if check is None:
        return None
    return FalseAlarmRow(
        kind=model.kind,
        method=check["method"],
        promised=f"{check['promised_rate']:.4f}",
        same_period=_format_measured(check["same_period"], check["promised_rate"], check["tolerance"]),
        later_period=_format_measured(check["later_period"], check["promised_rate"], check["tolerance"]),
    )


def promise_tolerance(models: list[ModelSection]) -> str:
    """Return the tolerance of the models' false-alarm checks as text, such as "2", or "" without a check."""
    tolerances = sorted({model.false_alarms["tolerance"] for model in models if model.false_alarms is not None})
    return " or ".join(f"{value:g}" for value in tolerances)


def _format_measured(measured: dict, promised: float, tolerance: float) -> str:
    """Format a measured rate as "0.0123 of 400 windows", with its details and a mark when above the tolerance."""
    if measured["rate"] is None:
        return MISSING_VALUE
    text = f"{measured['rate']:.4f} of {measured['windows']} windows"
    details = []
    if measured.get("episodes"):
        details.append(f"{measured['episodes']} episode{'s' if measured['episodes'] != 1 else ''}")
    if measured.get("above_calibration_max"):
        details.append(f"{measured['above_calibration_max']} above every validation score, "
                       f"{measured['above_calibration_expected']:.1f} expected")
    bulk = bulk_shift_text(measured)
    if bulk is not None:
        details.append(bulk)
    if details:
        text += f" ({', '.join(details)})"
    if not measured["kept"]:
        text += f", above {tolerance:g} x {promised:.4f}"
    return text


@dataclass(frozen=True)
class PacketSummary:
    """Counts and time span of the packet table."""

    frames: int
    first_utc: str
    last_utc: str
    span_s: str
    source_addresses: int
    destination_addresses: int
    protocols: list[tuple[str, int, str]]


def metrics_row(model: ModelSection) -> MetricsRow:
    """Format one model's threshold and metrics. A metric it lacks shows as ``MISSING_VALUE``."""
    scores = np.asarray(model.window_scores, dtype=np.float64)
    flagged = int(np.sum(scores > model.threshold))

    params = ", ".join(f"{name}={_format_number(value)}" for name, value in model.threshold_params.items())
    method = f"{model.threshold_method} ({params})" if params else model.threshold_method

    return MetricsRow(
        kind=model.kind,
        version=model.version,
        windows=int(scores.size),
        flagged=f"{flagged} of {scores.size}",
        threshold=f"{model.threshold:.6g}",
        method=method,
        metrics=[_format_metric(key, model.metrics.get(key)) for key, _ in METRIC_COLUMNS],
    )


def missing_model_kinds(models: list[ModelSection]) -> list[str]:
    """Return the kinds of ``EXPECTED_MODEL_KINDS`` that have no section, in that order."""
    present_kinds = {model.kind for model in models}
    return [kind for kind in EXPECTED_MODEL_KINDS if kind not in present_kinds]


def capture_counts(captures: list[CaptureEntry]) -> dict[str, int]:
    """Count captures per status, with every status of ``CAPTURE_STATUSES`` present."""
    counts = {"decoded": 0, "set aside": 0}
    for capture in captures:
        counts[capture.status] += 1
    return counts


def summarize_packets(packets: pd.DataFrame) -> PacketSummary:
    """Summarize frame count, UTC time span, distinct addresses and the top protocols."""
    frames = len(packets)
    timestamps_ns = pd.to_numeric(packets["timestamp_ns"], errors="coerce").dropna()

    if timestamps_ns.empty:
        first_utc = last_utc = span_s = MISSING_VALUE
    else:
        first_ns, last_ns = int(timestamps_ns.min()), int(timestamps_ns.max())
        first_utc = format_utc_ns(first_ns)
        last_utc = format_utc_ns(last_ns)
        span_s = f"{(last_ns - first_ns) / 1e9:.3f}"

    protocol_counts = packets["protocol"].dropna().astype(str).value_counts()
    protocols = [
        (name, int(count), f"{count / frames:.1%}")
        for name, count in protocol_counts.head(TOP_PROTOCOLS).items()
    ]

    return PacketSummary(
        frames=frames,
        first_utc=first_utc,
        last_utc=last_utc,
        span_s=span_s,
        source_addresses=int(packets["src_addr"].nunique(dropna=True)),
        destination_addresses=int(packets["dst_addr"].nunique(dropna=True)),
        protocols=protocols,
    )


def format_utc_ns(timestamp_ns: int) -> str:
    """Format ns since the Unix epoch as ISO 8601 UTC with nanoseconds, e.g. 2024-12-04T08:13:20.000000100Z."""
    return pd.Timestamp(timestamp_ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ns % 1_000_000_000:09d}Z"


def _format_metric(key: str, value: float | None) -> str:
    """Format one metric cell. The promotion decision, stored as 1.0 or 0.0, reads as yes or no."""
    if key == "promoted" and value is not None:
        return "yes" if value else "no"
    return _format_fraction(value)


def _format_fraction(value: float | None) -> str:
    if value is None:
        return MISSING_VALUE
    if not math.isfinite(value):
        return "undefined"
    return f"{value:.4f}"


def _format_number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
