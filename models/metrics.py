"""Detection metrics with the anomaly class (label 1) as the positive class."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

NS_PER_S = 1_000_000_000


def binary_metrics(labels: np.ndarray, flagged: np.ndarray) -> dict:
    """Compute accuracy, precision, recall and F1 of the anomaly class, and the confusion matrix.

    Precision, recall and F1 are 0.0 where their denominator is zero (no window
    flagged, or no anomalous window), as scikit-learn's ``zero_division=0`` does.

    Args:
        labels: [windows] ground truth, 1 anomalous and 0 normal.
        flagged: [windows] detector decision, True for anomalous.

    Returns:
        ``accuracy``, ``precision``, ``recall``, ``f1``, ``support_anomalous``,
        ``support_normal`` and ``confusion`` as [[tn, fp], [fn, tp]].
    """
    truth = np.asarray(labels).astype(bool)
    predicted = np.asarray(flagged).astype(bool)
    if truth.shape != predicted.shape:
        raise ValueError(f"labels and flags differ in shape: {truth.shape} and {predicted.shape}")
    tp = int(np.count_nonzero(truth & predicted))
    tn = int(np.count_nonzero(~truth & ~predicted))
    fp = int(np.count_nonzero(~truth & predicted))
    fn = int(np.count_nonzero(truth & ~predicted))
    total = tp + tn + fp + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support_anomalous": tp + fn,
        "support_normal": tn + fp,
        "confusion": [[tn, fp], [fn, tp]],
    }


def oracle_metrics(labels: np.ndarray, scores: np.ndarray) -> dict | None:
    """Compute the metrics at the oracle threshold, the best F1 threshold chosen with the labels.

    The result shows how much a label-free threshold leaves on the table. It is
    optimistic by construction, because the threshold reads the labels it is
    measured on, so it never replaces the model's own threshold.

    Args:
        labels: [windows] ground truth, 1 anomalous and 0 normal.
        scores: [windows] window scores, higher is more anomalous.

    Returns:
        ``method`` (``oracle_best_f1``), ``threshold`` and the keys of
        ``binary_metrics``, or None when no window is anomalous, since F1 is
        undefined then.
    """
    from models.thresholds import oracle_threshold

    truth = np.asarray(labels).astype(int)
    if not truth.any():
        return None
    threshold = oracle_threshold(truth, scores)
    return {"method": threshold.method, "threshold": threshold.value, **binary_metrics(truth, threshold.flag(scores))}


def flagged_share(flagged: np.ndarray) -> float:
    """Return the share of windows flagged, for data without labels."""
    flags = np.asarray(flagged).astype(bool)
    return float(flags.mean()) if flags.size else 0.0


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    """Compute ROC-AUC and PR-AUC (average precision) of window scores.

    Both read the scores alone, not a threshold: they measure how well the score
    ranks anomalous windows above normal ones. PR-AUC is the one to watch on
    imbalanced data, because its chance level is the share of anomalous windows,
    not 0.5.

    Args:
        labels: [windows] ground truth, 1 anomalous and 0 normal.
        scores: [windows] window scores, higher meaning more anomalous.

    Returns:
        ``roc_auc`` and ``pr_auc``, each None when the labels hold only one class.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    truth = np.asarray(labels).astype(int)
    values = np.asarray(scores, dtype=np.float64)
    if truth.shape != values.shape:
        raise ValueError(f"labels and scores differ in shape: {truth.shape} and {values.shape}")
    if truth.size == 0 or truth.min() == truth.max():
        return {"roc_auc": None, "pr_auc": None}
    return {"roc_auc": float(roc_auc_score(truth, values)), "pr_auc": float(average_precision_score(truth, values))}


def false_alarm_rate(labels: np.ndarray, flagged: np.ndarray) -> float | None:
    """Return the share of normal windows flagged, or None when there is no normal window."""
    normal = ~np.asarray(labels).astype(bool)
    flags = np.asarray(flagged).astype(bool)
    return float(flags[normal].mean()) if normal.any() else None


def alarm_episodes(metadata: pd.DataFrame, flagged: np.ndarray) -> int:
    """Count the episodes among flagged windows (see ``alarm_episode_windows``)."""
    return len(alarm_episode_windows(metadata, flagged))


def alarm_episode_windows(metadata: pd.DataFrame, flagged: np.ndarray) -> list[pd.Index]:
    """Group flagged windows into episodes: runs of flagged windows whose frames overlap or touch.

    Overlapping windows share frames, so one unusual stretch of traffic flags
    several of them in a row, and an operator sees one alert. Two flagged windows
    belong to one episode when they are in the same capture and the later one
    starts at most one frame after the earlier one ends. Host windows (``host``
    column) are kept apart per host.

    Args:
        metadata: window metadata with ``capture_id``, ``first_frame`` and
            ``last_frame`` (and ``host`` in host mode), aligned with ``flagged``.
        flagged: bool per window.

    Returns:
        One index of ``metadata`` labels per episode, its windows ordered by
        first frame.
    """
    flags = np.asarray(flagged).astype(bool)
    if not flags.any():
        return []
    keys = ["capture_id", "host"] if "host" in metadata.columns else ["capture_id"]
    windows = metadata.loc[flags, [*keys, "first_frame", "last_frame"]].copy()
    for key in keys:
        windows[key] = windows[key].fillna("").astype(str)
    episodes: list[pd.Index] = []
    for _key, group in windows.groupby(keys, sort=False):
        group = group.sort_values("first_frame", kind="stable")
        reach = np.maximum.accumulate(group["last_frame"].to_numpy(np.int64))
        starts = group["first_frame"].to_numpy(np.int64)
        breaks = np.flatnonzero(starts[1:] > reach[:-1] + 1) + 1
        episodes.extend(group.index[bounds[0] : bounds[1]] for bounds in zip([0, *breaks], [*breaks, len(group)]))
    return episodes


@dataclass(frozen=True)
class AttackSpan:
    """An inclusive range of frames of one named attack in one capture, from a labels file.

    Attributes:
        capture_id: the capture the frames belong to.
        attack: the attack name (the labels file's ``attack`` column).
        first_frame: first 1-based frame number of the range.
        last_frame: last frame number of the range, inclusive.
        start_ns: timestamp of the attack's first frame, ns since the Unix epoch,
            or None when unknown.
    """

    capture_id: str
    attack: str
    first_frame: int
    last_frame: int
    start_ns: int | None = None


def attack_windows(metadata: pd.DataFrame, span: AttackSpan) -> np.ndarray:
    """Return a mask of the anomalous windows that hold frames of ``span``.

    A window covers the frame numbers from ``first_frame`` to ``last_frame``.
    NOTE: this is exact for captures stored in time order, as ``netae mix``
    writes them. Where frames were stored out of time order, a window may hold
    frame numbers outside that range.
    """
    low = np.minimum(metadata["first_frame"].to_numpy(np.int64), metadata["last_frame"].to_numpy(np.int64))
    high = np.maximum(metadata["first_frame"].to_numpy(np.int64), metadata["last_frame"].to_numpy(np.int64))
    same_capture = (metadata["capture_id"] == span.capture_id).to_numpy()
    anomalous = (pd.to_numeric(metadata["label"], errors="coerce") == 1).to_numpy()
    overlaps = (low <= span.last_frame) & (high >= span.first_frame)
    return same_capture & anomalous & overlaps


def per_attack_metrics(metadata: pd.DataFrame, flagged: np.ndarray, spans: list[AttackSpan]) -> dict[str, dict]:
    """Compute the recall and the detection delay of each named attack.

    Recall is the share of the attack's anomalous windows that are flagged. The
    detection delay of one occurrence (one attack name in one capture) runs from
    its first frame to the end of its first flagged window, because a window can
    be scored only once its last frame has arrived. It is clipped at 0.

    Args:
        metadata: window metadata (``capture_id``, ``first_frame``, ``last_frame``,
            ``start_ns``, ``end_ns``, ``label``), row i describing ``flagged[i]``.
        flagged: [windows] detector decisions.
        spans: the labelled attack ranges; spans without a name are grouped as
            ``unnamed``.

    Returns:
        Per attack name: ``windows`` (anomalous windows holding its frames),
        ``recall`` (None without windows), ``occurrences``, ``detected``
        (occurrences with at least one flagged window) and ``detection_delay_s``
        (mean over detected occurrences, None when none was detected). When a
        span has no ``start_ns``, the start of its first window stands in, which
        can only make the delay longer.
    """
    flags = np.asarray(flagged).astype(bool)
    if len(metadata) != flags.size:
        raise ValueError(f"metadata has {len(metadata)} rows but there are {flags.size} decisions")
    starts = metadata["start_ns"].to_numpy(np.int64)
    ends = metadata["end_ns"].to_numpy(np.int64)

    occurrences: dict[tuple[str, str], list[AttackSpan]] = defaultdict(list)
    for span in spans:
        occurrences[(span.attack or "unnamed", span.capture_id)].append(span)

    masks: dict[str, np.ndarray] = {}
    delays: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for (attack, _capture_id), group in occurrences.items():
        mask = np.zeros(flags.size, dtype=bool)
        for span in group:
            mask |= attack_windows(metadata, span)
        masks[attack] = masks.get(attack, np.zeros(flags.size, dtype=bool)) | mask
        counts[attack] += 1
        hits = mask & flags
        if not hits.any():
            continue
        known_starts = [span.start_ns for span in group if span.start_ns is not None]
        first_ns = min(known_starts) if known_starts else int(starts[mask].min())
        detected_ns = int(ends[hits].min())
        delays[attack].append(max(detected_ns - first_ns, 0) / NS_PER_S)

    result = {}
    for attack, mask in sorted(masks.items()):
        windows = int(mask.sum())
        result[attack] = {
            "windows": windows,
            "recall": float(flags[mask].mean()) if windows else None,
            "occurrences": counts[attack],
            "detected": len(delays[attack]),
            "detection_delay_s": float(np.mean(delays[attack])) if delays[attack] else None,
        }
    return result
