"""Cross-fitted false-alarm measurement and the rate each threshold method promises."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.threshold_checks import (
    bulk_shift,
    bulk_shift_text,
    cross_fitted_false_alarm_rate,
    describe_false_alarm_check,
    false_alarm_check,
    keeps_promise,
    promised_false_alarm_rate,
    threshold_promise,
)
from models.thresholds import Threshold, fit_threshold
from tests.false_alarm_samples import false_alarm_result


def _metadata(splits: list[str], labels: list[int]) -> pd.DataFrame:
    count = len(splits)
    return pd.DataFrame({
        "capture_id": ["c"] * count,
        "start_ns": np.arange(count, dtype=np.int64) * 1_000,
        "first_frame": np.arange(count, dtype=np.int64) * 8 + 1,
        "last_frame": np.arange(count, dtype=np.int64) * 8 + 32,
        "split": splits,
        "label": labels,
    })


def test_promised_rates():
    assert promised_false_alarm_rate("quantile", target_false_alarm_rate=0.02) == 0.02
    assert promised_false_alarm_rate("pot", target_false_alarm_rate=0.01) == 0.01
    assert promised_false_alarm_rate("mean_k_std", k=3.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="must be in"):
        promised_false_alarm_rate("pot", target_false_alarm_rate=5)
    with pytest.raises(ValueError, match="unknown threshold method"):
        promised_false_alarm_rate("median")


def test_folds_measured_by_each_other():
    # Blocks of 4 windows alternate between folds. Fold 1 scores are far above
    # fold 0, so a threshold fitted on fold 0 flags all of fold 1, and one fitted
    # on fold 1 flags none of fold 0: the rate is exactly one half.
    scores = np.array([1.0, 1.1, 1.2, 1.3, 100.0, 101.0, 102.0, 103.0] * 5)
    metadata = _metadata(["validation"] * scores.size, [0] * scores.size)

    rate, windows = cross_fitted_false_alarm_rate(metadata, scores, "quantile", block_windows=4,
                                                  target_false_alarm_rate=0.1)

    assert windows == 40
    assert rate == 0.5


def test_only_normal_validation_windows_measured():
    scores = np.concatenate([np.arange(1.0, 41.0), [50.0, 60.0]])
    metadata = _metadata(["validation"] * 40 + ["test", "validation"], [0] * 41 + [1])

    _rate, windows = cross_fitted_false_alarm_rate(metadata, scores, "mean_k_std", block_windows=1, k=3.0)

    assert windows == 40


def test_quantile_promise_kept_when_exchangeable():
    rng = np.random.default_rng(3)
    scores = rng.gamma(2.0, 1.0, size=4_000)
    metadata = _metadata(["validation"] * scores.size, [0] * scores.size)

    rate, _windows = cross_fitted_false_alarm_rate(metadata, scores, "quantile", target_false_alarm_rate=0.01)

    assert 0.005 <= rate <= 0.02


def test_small_folds_give_no_rate():
    scores = np.arange(1.0, 18.0)
    metadata = _metadata(["validation"] * 17, [0] * 17)

    assert cross_fitted_false_alarm_rate(metadata, scores, "quantile", block_windows=1) == (None, 0)


def test_fitted_threshold_states_its_promise():
    scores = np.linspace(1.0, 2.0, 200)

    assert threshold_promise(fit_threshold("mean_k_std", scores, k=2.0)) == pytest.approx(0.2)
    assert threshold_promise(fit_threshold("quantile", scores, target_false_alarm_rate=0.02)) == 0.02
    assert threshold_promise(fit_threshold("pot", scores, target_false_alarm_rate=0.05)) == 0.05
    with pytest.raises(ValueError, match="makes no false-alarm promise"):
        threshold_promise(Threshold(method="oracle_best_f1", value=1.5, params={}))


def test_promise_kept_up_to_twice():
    assert keeps_promise(0.02, 0.01) is True
    assert keeps_promise(0.0201, 0.01) is False
    assert keeps_promise(None, 0.01) is None


def test_check_measures_both_periods():
    # 40 normal validation windows, then a test split of 120 windows. Of its
    # 100 windows labelled normal, 5 consecutive ones score far above every
    # validation score (one episode). The 10 anomalous windows and the 10
    # unlabelled ones score high too, but the later period leaves them out.
    validation = np.linspace(1.0, 2.0, 40)
    later_normal = np.full(100, 1.5)
    later_normal[50:55] = 9.0
    scores = np.concatenate([validation, later_normal, np.full(10, 20.0), np.full(10, 20.0)])
    metadata = _metadata(["validation"] * 40 + ["test"] * 120, [0] * 140 + [1] * 10 + [0] * 10)
    metadata["label"] = metadata["label"].astype("Int8")
    metadata.loc[150:, "label"] = pd.NA
    threshold = fit_threshold("quantile", validation, target_false_alarm_rate=0.02)

    check = false_alarm_check(metadata, scores, threshold)

    assert check["method"] == "quantile"
    assert check["promised_rate"] == 0.02
    # Blocks of 16 windows put validation windows 0-15 and 32-39 in one fold and
    # 16-31 in the other. Too few for the 0.02 rank, each fold's threshold is
    # its largest score, so only windows 32-39 lie above the other fold's.
    assert check["same_period"] == {"rate": 8 / 40, "windows": 40, "kept": False}
    assert check["later_period"]["windows"] == 100
    assert check["later_period"]["rate"] == 0.05
    assert check["later_period"]["episodes"] == 1
    assert check["later_period"]["above_calibration_max"] == 5
    assert check["later_period"]["above_calibration_expected"] == 100 / 41
    # The 37th of the 40 validation scores is the conformal 90% cut, and only
    # the 5 high later windows lie above it.
    assert check["later_period"]["above_calibration_p90"] == 0.05
    assert check["later_period"]["above_calibration_p90_expected"] == 4 / 41
    assert check["later_period"]["kept"] is False
    assert json.loads(json.dumps(check)) == check


def test_windows_above_calibration_counted_unflagged():
    # A threshold above every score flags nothing, yet the 3 later windows
    # that score above the largest validation score are still counted.
    validation = np.linspace(1.0, 2.0, 40)
    later_normal = np.concatenate([np.full(57, 1.5), np.full(3, 2.5)])
    scores = np.concatenate([validation, later_normal])
    metadata = _metadata(["validation"] * 40 + ["test"] * 60, [0] * 100)
    threshold = Threshold(method="quantile", value=3.0, params={"target_false_alarm_rate": 0.01})

    check = false_alarm_check(metadata, scores, threshold)

    assert check["later_period"]["rate"] == 0.0
    assert check["later_period"]["above_calibration_max"] == 3
    assert check["later_period"]["above_calibration_expected"] == 60 / 41


def test_bulk_shift_unchanged_scores():
    # Of the 99 calibration scores 1 to 99 the 90th is the cut, so an
    # exchangeable window lies above it with probability 10 / 100. Later scores
    # 1.5 to 99.5 put 10 of 99 above it.
    share, expected = bulk_shift(np.arange(1.0, 100.0), np.arange(1.0, 100.0) + 0.5)

    assert expected == 0.1
    assert share == 10 / 99


def test_bulk_shift_moved_scores():
    # Later scores 51 to 149: the 59 from 91 up lie above the cut of 90.
    share, expected = bulk_shift(np.arange(1.0, 100.0), np.arange(51.0, 150.0))

    assert share == 59 / 99
    assert share > 5 * expected


def test_bulk_shift_needs_nine_calibration_scores():
    assert bulk_shift(np.arange(1.0, 9.0), np.arange(5.0)) == (None, 0.0)
    assert bulk_shift(np.arange(1.0, 10.0), np.arange(5.0))[1] == 0.1
    assert bulk_shift(np.arange(1.0, 100.0), np.zeros(0)) == (None, 0.0)


def test_bulk_shift_text_marks_only_large_excess():
    near = {"above_calibration_p90": 0.147, "above_calibration_p90_expected": 0.1}
    far = {"above_calibration_p90": 0.3, "above_calibration_p90_expected": 0.1}

    assert bulk_shift_text(near) == "0.147 of later windows above the validation scores' 90th percentile, 0.100 expected"
    assert bulk_shift_text(far).endswith(", over 2 times the expected share")
    assert bulk_shift_text({"rate": None}) is None


def test_threshold_without_parameters_rejected():
    with pytest.raises(ValueError, match="quantile threshold lacks the parameter"):
        threshold_promise(Threshold(method="quantile", value=1.0, params={}))


def test_check_without_labels_has_no_later_rate():
    scores = np.linspace(1.0, 3.0, 80)
    metadata = _metadata(["validation"] * 40 + ["test"] * 40, [0] * 80)
    metadata["label"] = pd.Series([pd.NA] * 80, dtype="Int8")
    threshold = fit_threshold("mean_k_std", scores[:40], k=3.0)

    check = false_alarm_check(metadata, scores, threshold)

    assert check["later_period"] == {"rate": None, "windows": 0, "episodes": 0, "above_calibration_max": 0,
                                     "above_calibration_expected": 0.0, "above_calibration_p90": None,
                                     "above_calibration_p90_expected": 0.0, "kept": None}
    assert check["same_period"]["windows"] == 40


def test_check_summary_line():
    assert describe_false_alarm_check(false_alarm_result()) == (
        "promised 0.010 (pot), same period 0.005 of 186 windows, "
        "later period 0.039 of 155 windows (above 2 times the promise); "
        "0.260 of later windows above the validation scores' 90th percentile, 0.099 expected, over 2 times the expected share"
    )
    assert describe_false_alarm_check(false_alarm_result(None, None)).endswith("later period not measured")
