"""Checks of a threshold method's false-alarm promise on normal windows it was not calibrated on.

A threshold promises a false-alarm rate: ``quantile`` and ``pot`` are given
one, and ``mean_k_std`` guarantees only Cantelli's one-sided bound
``1 / (1 + k^2)`` whatever the score distribution. The bound holds for the
true mean and deviation, so with estimated ones it is approximate. Read as a
Gaussian rule, k = 3 would mean 0.0013, but reconstruction errors are rarely
Gaussian.

The promise holds for windows drawn like the calibration windows. It is
measured by cross-fitting on the normal validation windows: they are cut into
blocks of consecutive windows, the blocks alternate between two folds, and
each fold is flagged by a threshold calibrated on the other fold only. Blocks
keep overlapping windows (length 32, stride 8 overlap their three neighbours)
in one fold, so no measured window shares frames with a calibration window
except at block edges. Later traffic, such as a test split, also shows the
drift since calibration, which no threshold can promise against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.thresholds import calibration_mask, fit_threshold

# Consecutive windows kept in one fold.
DEFAULT_BLOCK_WINDOWS = 16
# Fewer windows per fold than this calibrate no meaningful threshold.
MIN_FOLD_WINDOWS = 10


def promised_false_alarm_rate(method: str, *, k: float = 3.0, target_false_alarm_rate: float = 0.01) -> float:
    """Return the false-alarm rate a method promises on windows like its calibration windows.

    Args:
        method: ``mean_k_std``, ``quantile`` or ``pot``.
        k: k of ``mean_k_std``, positive.
        target_false_alarm_rate: target of ``quantile`` and ``pot``, in (0, 0.5).

    Raises:
        ValueError: for an unknown method, k <= 0 or a target outside (0, 0.5).
    """
    if method == "mean_k_std":
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        return 1.0 / (1.0 + k * k)
    if method in ("quantile", "pot"):
        if not 0.0 < target_false_alarm_rate < 0.5:
            raise ValueError(f"target_false_alarm_rate must be in (0, 0.5), got {target_false_alarm_rate}")
        return float(target_false_alarm_rate)
    raise ValueError(f"unknown threshold method {method!r}; expected mean_k_std, quantile or pot")


def cross_fitted_false_alarm_rate(
    metadata: pd.DataFrame,
    scores: np.ndarray,
    method: str,
    *,
    block_windows: int = DEFAULT_BLOCK_WINDOWS,
    **threshold_options,
) -> tuple[float | None, int]:
    """Measure a method's false-alarm rate on normal validation windows by two-fold cross-fitting.

    Args:
        metadata: window metadata with ``split``, ``label``, ``capture_id``,
            ``start_ns`` and ``first_frame``; row i describes ``scores[i]``.
        scores: [windows] window scores.
        method: a threshold method of ``models.thresholds``.
        block_windows: consecutive windows per block, at least 1.
        threshold_options: passed to ``fit_threshold`` (k, target rate, POT level).

    Windows of the ``validation`` split not labelled anomalous are measured
    (unlabelled counts as normal), in time order per capture. Blocks may run
    across the boundary between two captures.

    Returns:
        ``(rate, windows)``: the share of measured windows flagged, and how many
        were measured. The rate is None, with 0 windows, when either fold has
        fewer than ``MIN_FOLD_WINDOWS`` windows.

    Raises:
        ValueError: when lengths differ or ``block_windows`` < 1, and as
            ``fit_threshold`` raises.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(metadata) != scores.size:
        raise ValueError(f"metadata has {len(metadata)} rows but there are {scores.size} scores")
    if block_windows < 1:
        raise ValueError(f"block_windows must be at least 1, got {block_windows}")

    normal = calibration_mask(metadata)
    chosen = metadata[normal].assign(score=scores[normal])
    chosen = chosen.sort_values(["capture_id", "start_ns", "first_frame"], kind="stable")
    ordered = chosen["score"].to_numpy()
    fold = (np.arange(ordered.size) // block_windows) % 2
    if min((fold == 0).sum(), (fold == 1).sum()) < MIN_FOLD_WINDOWS:
        return None, 0

    flagged = 0
    for measured in (0, 1):
        threshold = fit_threshold(method, ordered[fold != measured], **threshold_options)
        flagged += int(threshold.flag(ordered[fold == measured]).sum())
    return flagged / ordered.size, int(ordered.size)
