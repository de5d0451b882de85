"""Autoencoders, thresholds and metrics on seeded synthetic windows with planted anomalies."""

from __future__ import annotations

import numpy as np
import pytest

from models.artifacts import model_from_bytes, model_to_bytes
from models.metrics import binary_metrics, flagged_share
from models.scoring import reconstruction_errors
from models.thresholds import mean_k_std
from models.training import TrainingConfig, build_model

STEPS, FEATURES = 16, 6


def _normal_windows(count: int, rng: np.random.Generator) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1, 1))
    steps = np.arange(STEPS).reshape(1, STEPS, 1)
    offsets = np.linspace(0, 1, FEATURES).reshape(1, 1, FEATURES)
    return (0.5 + 0.3 * np.sin(steps / 3.0 + phase + offsets)).astype(np.float32)


def _ranking_auc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """Probability that a random anomalous window scores above a random normal one."""
    return float(np.mean(anomalous[:, None] > normal[None, :]))


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(7)
    train = _normal_windows(512, rng)
    normal = _normal_windows(128, rng)
    anomalous = rng.uniform(0, 1, size=(32, STEPS, FEATURES)).astype(np.float32)
    return train, normal, anomalous


@pytest.mark.parametrize("kind", ["lstm", "conv1d"])
def test_autoencoder_ranks_planted_anomalies_first(kind, planted):
    train, normal, anomalous = planted
    config = TrainingConfig(epochs=15, batch_size=32, seed=3)
    import keras

    keras.utils.set_random_seed(config.seed)
    model = build_model(kind, STEPS, FEATURES, config)
    model.fit(train, train, epochs=config.epochs, batch_size=config.batch_size, verbose=0)
    normal_scores = reconstruction_errors(model, [normal])
    anomalous_scores = reconstruction_errors(model, [anomalous])
    assert _ranking_auc(normal_scores, anomalous_scores) >= 0.95


@pytest.mark.parametrize("kind", ["lstm", "conv1d"])
def test_model_round_trip_in_safe_mode_scores_identically(kind, planted):
    train, normal, _ = planted
    model = build_model(kind, STEPS, FEATURES, TrainingConfig(seed=1))
    model.fit(train[:64], train[:64], epochs=1, verbose=0)
    loaded = model_from_bytes(model_to_bytes(model))
    np.testing.assert_allclose(reconstruction_errors(loaded, [normal]), reconstruction_errors(model, [normal]), rtol=1e-6)


def test_conv1d_handles_window_length_not_divisible_by_four():
    model = build_model("conv1d", 30, 3, TrainingConfig())
    assert model.output_shape == (None, 30, 3)


def test_threshold_is_mean_plus_k_std():
    threshold = mean_k_std(np.array([1.0, 2.0, 3.0]), k=3.0)
    assert threshold.value == pytest.approx(2.0 + 3.0 * np.std([1.0, 2.0, 3.0]))
    assert threshold.params["windows"] == 3
    assert threshold.flag(np.array([2.0, 10.0])).tolist() == [False, True]


def test_threshold_rejects_empty_and_non_finite_scores():
    with pytest.raises(ValueError, match="zero normal windows"):
        mean_k_std(np.array([]))
    with pytest.raises(ValueError, match="NaN or infinity"):
        mean_k_std(np.array([1.0, np.nan]))


def test_metrics_use_anomaly_as_positive_class():
    metrics = binary_metrics(np.array([1, 1, 0, 0, 0]), np.array([True, False, True, False, False]))
    assert metrics["confusion"] == [[2, 1], [1, 1]]
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)
    assert metrics["accuracy"] == pytest.approx(0.6)


def test_metrics_without_flags_have_zero_precision():
    metrics = binary_metrics(np.array([1, 0]), np.array([False, False]))
    assert metrics["precision"] == 0.0
    assert metrics["recall"] == 0.0
    assert metrics["f1"] == 0.0
    assert flagged_share(np.array([True, False, False, False])) == pytest.approx(0.25)
