"""Cross-fitted false-alarm measurement and the rate each threshold method promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.threshold_checks import cross_fitted_false_alarm_rate, promised_false_alarm_rate


def _metadata(splits: list[str], labels: list[int]) -> pd.DataFrame:
    count = len(splits)
    return pd.DataFrame({
        "capture_id": ["c"] * count,
        "start_ns": np.arange(count, dtype=np.int64) * 1_000,
        "first_frame": np.arange(count, dtype=np.int64) * 8 + 1,
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
