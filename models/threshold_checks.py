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
``false_alarm_check`` measures both periods for one fitted threshold, the way
the retraining flow and the evaluation benchmark report them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.metrics import alarm_episodes
from models.thresholds import Threshold, calibration_mask, fit_threshold, quantile

# Consecutive windows kept in one fold.
DEFAULT_BLOCK_WINDOWS = 16
# Fewer windows per fold than this calibrate no meaningful threshold.
MIN_FOLD_WINDOWS = 10
# A measured rate keeps the promise when it is at most this many times the promised rate.
PROMISE_TOLERANCE = 2.0
# Share of normal validation scores below the cut that ``bulk_shift`` compares later windows with. A
# threshold's promise concerns the far tail, and this cut shows whether the bulk of the scores moved too.
BULK_LEVEL = 0.9
# Keys of the measured periods in a ``false_alarm_check`` result, in display order.
FALSE_ALARM_PERIODS: tuple[str, ...] = ("same_period", "later_period")


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
    across the boundary between two captures. Each refit is fitted on about
    half the windows, so with few windows the measured rate is pessimistic
    against the threshold calibrated on all of them. The refits log their fallbacks at
    DEBUG, so that they do not read as warnings about that threshold.

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
        threshold = fit_threshold(method, ordered[fold != measured], quiet=True, **threshold_options)
        flagged += int(threshold.flag(ordered[fold == measured]).sum())
    return flagged / ordered.size, int(ordered.size)


def fit_options_of(threshold: Threshold) -> dict:
    """Return the ``fit_threshold`` options that calibrated ``threshold``, read from its parameters.

    Refitting with them on other normal scores gives a threshold of the same
    rule, which is what cross-fitting needs.

    Raises:
        ValueError: for a method that makes no promise, such as the oracle's.
    """
    names = {
        "mean_k_std": {"k": "k"},
        "quantile": {"target_false_alarm_rate": "target_false_alarm_rate"},
        "pot": {"target_false_alarm_rate": "target_false_alarm_rate", "pot_initial_quantile": "initial_quantile"},
    }.get(threshold.method)
    if names is None:
        raise ValueError(f"threshold method {threshold.method!r} makes no false-alarm promise; expected mean_k_std, quantile or pot")
    missing = [param for param in names.values() if param not in threshold.params]
    if missing:
        raise ValueError(f"{threshold.method} threshold lacks the parameter(s) {', '.join(missing)}. "
                         "Calibrate it again with fit_threshold.")
    return {option: float(threshold.params[param]) for option, param in names.items()}


def threshold_promise(threshold: Threshold) -> float:
    """Return the false-alarm rate a fitted threshold promises, from its method and parameters.

    Raises:
        ValueError: for a method that makes no promise, such as the oracle's.
    """
    options = fit_options_of(threshold)
    return promised_false_alarm_rate(
        threshold.method, k=options.get("k", 3.0), target_false_alarm_rate=options.get("target_false_alarm_rate", 0.01)
    )


def later_period_mask(metadata: pd.DataFrame) -> np.ndarray:
    """Return True for windows of the ``test`` split labelled normal (label 0). Unlabelled windows are left out."""
    labelled_normal = pd.to_numeric(metadata["label"], errors="coerce").eq(0).fillna(False).to_numpy(bool)
    return (metadata["split"] == "test").to_numpy() & labelled_normal


def bulk_shift(calibration: np.ndarray, later: np.ndarray) -> tuple[float | None, float]:
    """Return the share of ``later`` scores above the conformal ``BULK_LEVEL`` quantile of ``calibration``, and
    the share expected if nothing had changed.

    The cut is the ``ceil((n + 1) * BULK_LEVEL)``-th smallest of the n calibration
    scores, as ``quantile`` sets it. If later scores were exchangeable with the
    calibration scores (and had no ties), each would lie above the cut with
    probability ``(n + 1 - rank) / (n + 1)``, just under ``1 - BULK_LEVEL``. A share
    far above that means that later benign scores moved as a whole, not only in
    the far tail that a threshold's promise concerns. A share near it, with a
    broken promise, points at a few rare events in the tail.

    Returns:
        (share, expected). The share is None when there are no later scores, or
        too few calibration scores to place the cut (fewer than
        ``1 / (1 - BULK_LEVEL) - 1``, so 9), and expected is then 0.0.
    """
    if not later.size or not calibration.size:
        return None, 0.0
    cut = quantile(calibration, target_false_alarm_rate=1.0 - BULK_LEVEL, quiet=True)
    if "too_few_windows" in cut.params:
        return None, 0.0
    expected = (calibration.size + 1 - cut.params["rank"]) / (calibration.size + 1)
    return float(np.mean(later > cut.value)), float(expected)


def bulk_shift_text(measured: dict) -> str | None:
    """Return the later period's bulk-shift share as text, marked when it is more than ``PROMISE_TOLERANCE``
    times the expected share, or None when the period has no share.

    The same tolerance as for a promise applies: overlapping windows on a short
    later period move the share by chance, so a smaller excess is not read as a
    change of the traffic.
    """
    share = measured.get("above_calibration_p90")
    if share is None:
        return None
    expected = measured["above_calibration_p90_expected"]
    text = f"{share:.3f} of later windows above the validation scores' 90th percentile, {expected:.3f} expected"
    if share > PROMISE_TOLERANCE * expected:
        text += f", over {PROMISE_TOLERANCE:g} times the expected share"
    return text


def false_alarm_check(metadata: pd.DataFrame, scores: np.ndarray, threshold: Threshold) -> dict:
    """Measure a fitted threshold's false-alarm rate in two periods, beside the rate it promises.

    Args:
        metadata: window metadata with ``split``, ``label``, ``capture_id``,
            ``start_ns``, ``first_frame`` and ``last_frame``; row i describes ``scores[i]``.
        scores: [windows] window scores. Windows of other splits, and anomalous
            ones, are left out of both measurements.
        threshold: a threshold of ``mean_k_std``, ``quantile`` or ``pot``.

    Returns:
        A dict that ``json`` can encode, with ``method``, ``promised_rate``,
        ``tolerance``, ``same_period`` and ``later_period``. The same period is
        cross-fitted on the normal validation windows, and the later period is
        the test split's windows labelled normal. Each period gives the
        ``rate``, the ``windows`` measured and whether the rate is ``kept``
        (at most ``tolerance`` times the promise). The later period also counts
        the ``episodes`` its false alarms form, and the windows
        ``above_calibration_max`` that score above every normal validation
        score. ``above_calibration_expected`` is that count's mean if later
        windows were exchangeable with the n validation windows: m / (n + 1)
        for m later windows. A count well above it means later traffic scores
        higher than any threshold calibrated on those scores expects.
        ``above_calibration_p90`` is the share of later windows above the
        conformal 90% quantile of the validation scores, with its expected
        value ``above_calibration_p90_expected`` (see ``bulk_shift``). A period
        with nothing to measure has rate None, 0 windows and kept None.

    Raises:
        ValueError: when lengths differ or the method makes no promise.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(metadata) != scores.size:
        raise ValueError(f"metadata has {len(metadata)} rows but there are {scores.size} scores")
    promised = threshold_promise(threshold)
    same_rate, same_windows = cross_fitted_false_alarm_rate(metadata, scores, threshold.method, **fit_options_of(threshold))

    later = later_period_mask(metadata)
    flagged = threshold.flag(scores[later])
    later_rate = float(flagged.mean()) if flagged.size else None
    episodes = alarm_episodes(metadata[later], flagged) if flagged.size else 0
    calibration = scores[calibration_mask(metadata)]
    above_calibration, expected_above = 0, 0.0
    if calibration.size:
        above_calibration = int(np.count_nonzero(scores[later] > calibration.max()))
        expected_above = flagged.size / (calibration.size + 1)
    bulk_share, bulk_expected = bulk_shift(calibration, scores[later])

    return {
        "method": threshold.method,
        "promised_rate": promised,
        "tolerance": PROMISE_TOLERANCE,
        "same_period": {"rate": same_rate, "windows": same_windows, "kept": keeps_promise(same_rate, promised)},
        "later_period": {"rate": later_rate, "windows": int(flagged.size), "episodes": episodes,
                         "above_calibration_max": above_calibration, "above_calibration_expected": expected_above,
                         "above_calibration_p90": bulk_share, "above_calibration_p90_expected": bulk_expected,
                         "kept": keeps_promise(later_rate, promised)},
    }


def keeps_promise(rate: float | None, promised: float) -> bool | None:
    """Return whether a measured rate is at most ``PROMISE_TOLERANCE`` times the promise, or None without a rate."""
    return None if rate is None else bool(rate <= PROMISE_TOLERANCE * promised)


def describe_false_alarm_check(check: dict) -> str:
    """Return a one-line summary of a ``false_alarm_check`` result, for logs, the CLI and run summaries."""
    periods = []
    for period in FALSE_ALARM_PERIODS:
        measured = check[period]
        name = period.replace("_", " ")
        if measured["rate"] is None:
            periods.append(f"{name} not measured")
            continue
        text = f"{name} {measured['rate']:.3f} of {measured['windows']} windows"
        if not measured["kept"]:
            text += f" (above {check['tolerance']:g} times the promise)"
        bulk = bulk_shift_text(measured)
        if bulk is not None:
            text += f"; {bulk}"
        periods.append(text)
    return f"promised {check['promised_rate']:.3f} ({check['method']}), " + ", ".join(periods)
