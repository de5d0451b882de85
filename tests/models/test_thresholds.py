"""Threshold methods: false-alarm control, independence from test labels, the oracle reference."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from models.metrics import binary_metrics
from models.thresholds import (
    ORACLE_METHOD,
    THRESHOLD_METHODS,
    Threshold,
    calibration_scores,
    fit_threshold,
    oracle_threshold,
    peaks_over_threshold,
    quantile,
)

TARGET = 0.01


def _gamma_scores(rng: np.random.Generator, count: int) -> np.ndarray:
    """Skewed, positive scores shaped like reconstruction errors."""
    return rng.gamma(shape=2.0, scale=0.01, size=count)


@pytest.mark.parametrize("method", ["quantile", "pot"])
def test_false_alarm_rate_within_twice_target(method):
    rng = np.random.default_rng(11)
    threshold = fit_threshold(method, _gamma_scores(rng, 5_000), target_false_alarm_rate=TARGET)
    fresh = _gamma_scores(rng, 200_000)
    measured = float(threshold.flag(fresh).mean())
    assert TARGET / 2 <= measured <= 2 * TARGET


def test_pot_fits_tail_above_initial_threshold():
    calibration = _gamma_scores(np.random.default_rng(5), 300)
    threshold = peaks_over_threshold(calibration, target_false_alarm_rate=0.001, initial_quantile=0.9)
    assert threshold.params["excesses"] == 30
    assert "fallback" not in threshold.params
    assert threshold.value > threshold.params["initial_threshold"]


def test_pot_falls_back_with_few_excesses():
    scores = np.linspace(0.0, 1.0, 40)
    threshold = peaks_over_threshold(scores, target_false_alarm_rate=0.01, initial_quantile=0.8)
    assert threshold.params["excesses"] == 8
    assert "only 8 scores above the initial threshold" in threshold.params["fallback"]
    assert threshold.value == pytest.approx(quantile(scores, target_false_alarm_rate=0.01).value)


def test_quantile_leaves_at_most_target_share_above():
    scores = np.arange(1, 1001, dtype=float)
    threshold = quantile(scores, target_false_alarm_rate=0.01)
    assert threshold.value == pytest.approx(991.0)
    assert int(threshold.flag(scores).sum()) == 9


def _windows(rng: np.random.Generator, test_labels: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    splits = ["train"] * 300 + ["validation"] * 200 + ["test"] * len(test_labels)
    labels = np.concatenate([np.zeros(500, dtype=int), test_labels])
    labels[310] = 1  # an anomalous validation window is left out of calibration
    scores = _gamma_scores(rng, len(splits))
    scores[310] = 50.0
    return pd.DataFrame({"split": splits, "label": labels}), scores


@pytest.mark.parametrize("method", THRESHOLD_METHODS)
def test_threshold_identical_whatever_test_labels(method):
    documents = set()
    for labels_seed in range(4):
        test_labels = np.random.default_rng(labels_seed).integers(0, 2, size=150)
        metadata, scores = _windows(np.random.default_rng(3), test_labels)
        threshold = fit_threshold(method, calibration_scores(metadata, scores), target_false_alarm_rate=TARGET)
        documents.add(json.dumps(threshold.to_json(), sort_keys=True))
    assert len(documents) == 1


def test_calibration_uses_normal_validation_windows_only():
    metadata, scores = _windows(np.random.default_rng(3), np.ones(150, dtype=int))
    selected = calibration_scores(metadata, scores)
    assert selected.size == 199
    assert selected.max() < 50.0


def test_calibration_treats_unlabelled_windows_as_normal():
    metadata = pd.DataFrame({"split": ["validation", "validation", "test"], "label": [None, 1, None]})
    assert calibration_scores(metadata, np.array([0.1, 0.2, 0.3])).tolist() == [0.1]


def test_threshold_round_trips_through_json():
    threshold = fit_threshold("pot", _gamma_scores(np.random.default_rng(1), 1_000))
    assert Threshold.from_json(json.loads(json.dumps(threshold.to_json()))) == threshold


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="unknown threshold method 'median'; expected one of mean_k_std, quantile, pot"):
        fit_threshold("median", np.ones(10))


def test_target_rate_out_of_range_rejected():
    with pytest.raises(ValueError, match=r"target_false_alarm_rate must be in \(0, 0.5\), got 0.7"):
        quantile(np.ones(10), target_false_alarm_rate=0.7)


def test_oracle_threshold_reaches_best_f1_and_is_named():
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7, 0.25, 0.95])
    oracle = oracle_threshold(labels, scores)
    metrics = binary_metrics(labels, oracle.flag(scores))
    assert oracle.method == ORACLE_METHOD
    assert metrics["f1"] == pytest.approx(oracle.params["f1"])
    assert metrics["f1"] == pytest.approx(6 / 7)


def test_quantile_keeps_rate_with_small_calibration_sets():
    # 150 calibration windows: the plain empirical 0.99 quantile leaves about
    # 2 / 151 of new windows above it, the conformal rank at most 1 / 151.
    rng = np.random.default_rng(21)
    fresh = _gamma_scores(rng, 100_000)
    rates = [float(quantile(_gamma_scores(rng, 150), target_false_alarm_rate=0.01).flag(fresh).mean())
             for _ in range(200)]

    assert float(np.mean(rates)) <= 0.01


def test_quantile_with_too_few_windows_takes_the_largest():
    scores = np.arange(1.0, 51.0)

    threshold = quantile(scores, target_false_alarm_rate=0.01)

    assert threshold.value == 50.0
    assert "at least 99 are needed" in threshold.params["too_few_windows"]


def test_quiet_fit_logs_fallback_at_debug(caplog):
    scores = np.arange(1.0, 21.0)

    with caplog.at_level(logging.DEBUG, logger="models.thresholds"):
        quiet = fit_threshold("pot", scores, target_false_alarm_rate=0.01, quiet=True)
    assert [record.levelno for record in caplog.records] == [logging.DEBUG, logging.DEBUG]
    caplog.clear()

    with caplog.at_level(logging.DEBUG, logger="models.thresholds"):
        loud = fit_threshold("pot", scores, target_false_alarm_rate=0.01)
    assert [record.levelno for record in caplog.records] == [logging.WARNING, logging.WARNING]
    assert quiet == loud
    assert "fallback" in quiet.params
