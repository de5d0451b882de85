"""Baselines and an autoencoder on seeded windows with planted anomalies: PR-AUC floors."""

from __future__ import annotations

import numpy as np
import pytest

from models.baselines import IsolationForestDetector, ZScoreDetector, build_baseline, stack_windows
from models.metrics import ranking_metrics

STEPS, FEATURES = 16, 6


def _normal_windows(count: int, rng: np.random.Generator) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1, 1))
    steps = np.arange(STEPS).reshape(1, STEPS, 1)
    offsets = np.linspace(0, 1, FEATURES).reshape(1, 1, FEATURES)
    noise = rng.normal(0.0, 0.02, size=(count, STEPS, FEATURES))
    return (0.5 + 0.3 * np.sin(steps / 3.0 + phase + offsets) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def planted():
    """Normal training windows, and evaluation windows of which 1 in 11 is anomalous."""
    rng = np.random.default_rng(7)
    train = _normal_windows(600, rng)
    normal = _normal_windows(200, rng)
    anomalous = _normal_windows(20, rng)
    # Anomalies: a burst in two features over the second half of the window.
    anomalous[:, STEPS // 2:, 1:3] = rng.uniform(0.9, 1.0, size=(20, STEPS - STEPS // 2, 2))
    windows = np.concatenate([normal, anomalous])
    labels = np.concatenate([np.zeros(200, dtype=int), np.ones(20, dtype=int)])
    return train, windows, labels


@pytest.mark.parametrize("detector", [IsolationForestDetector(seed=1), ZScoreDetector(reduce="mean"), ZScoreDetector(reduce="max")])
def test_baseline_ranks_planted_anomalies(detector, planted):
    train, windows, labels = planted
    scores = detector.fit(train).score(windows)
    assert ranking_metrics(labels, scores)["pr_auc"] >= 0.8


def test_isolation_forest_is_reproducible_with_seed(planted):
    train, windows, _ = planted
    first = IsolationForestDetector(seed=3).fit(train).score(windows)
    second = IsolationForestDetector(seed=3).fit(train).score(windows)
    np.testing.assert_array_equal(first, second)


def test_zscore_of_training_mean_is_zero():
    train = np.stack([np.full((4, 2), 0.2), np.full((4, 2), 0.4)]).astype(np.float32)
    detector = ZScoreDetector(reduce="max").fit(train)
    np.testing.assert_allclose(detector.mean_, [0.3, 0.3], rtol=1e-6)
    assert detector.score(np.full((1, 4, 2), 0.3, dtype=np.float32))[0] == pytest.approx(0.0, abs=1e-6)
    assert detector.score(np.full((1, 4, 2), 0.5, dtype=np.float32))[0] == pytest.approx(2.0, rel=1e-5)


def test_zscore_constant_feature_uses_std_floor():
    train = np.full((3, 4, 1), 0.5, dtype=np.float32)
    detector = ZScoreDetector(reduce="max").fit(train)
    assert np.isfinite(detector.score(np.full((1, 4, 1), 0.6, dtype=np.float32))).all()


def test_unfitted_detector_raises():
    with pytest.raises(ValueError, match="not fitted; call fit"):
        IsolationForestDetector().score(np.zeros((1, 2, 2)))


def test_unknown_baseline_names_the_choices():
    with pytest.raises(ValueError, match="unknown baseline 'svm'; expected one of isolation_forest, zscore"):
        build_baseline("svm")


def test_stack_windows_skips_empty_blocks():
    stacked = stack_windows([np.zeros((2, 3, 4)), np.zeros((0, 3, 4)), np.ones((1, 3, 4))])
    assert stacked.shape == (3, 3, 4)


def test_conv1d_autoencoder_reaches_pr_auc_floor(planted):
    import keras

    from models.scoring import reconstruction_errors
    from models.training import TrainingConfig, build_model

    train, windows, labels = planted
    config = TrainingConfig(epochs=20, batch_size=32, seed=5)
    keras.utils.set_random_seed(config.seed)
    model = build_model("conv1d", STEPS, FEATURES, config)
    model.fit(train, train, epochs=config.epochs, batch_size=config.batch_size, verbose=0)
    scores = reconstruction_errors(model, [windows])
    assert ranking_metrics(labels, scores)["pr_auc"] >= 0.9


def _window_part(store, windows: np.ndarray, splits: list[str], labels: list[int]) -> str:
    """Write windows as one Parquet part with the windows job's schema; returns its key."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from spark_jobs.windows import WINDOW_SCHEMA

    count = len(windows)
    columns = {
        "capture_id": ["c"] * count,
        "split": splits,
        "window_index": np.arange(count),
        "first_frame": np.arange(count) * STEPS + 1,
        "last_frame": np.arange(count) * STEPS + STEPS,
        "start_ns": np.arange(count) * 1_000,
        "end_ns": np.arange(count) * 1_000 + 999,
        "label": labels,
        "anomalous_frames": [STEPS * label for label in labels],
        "values": list(windows.reshape(count, -1)),
    }
    # Columns this test does not set (nullable ones the windows job may add) stay null.
    table = pa.Table.from_pydict(
        {name: columns.get(name, [None] * count) for name in WINDOW_SCHEMA.names}, schema=WINDOW_SCHEMA
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.put_bytes("lake/windows/part-0.parquet", buffer.getvalue())
    return "lake/windows/part-0.parquet"


def test_evaluate_baselines_on_window_parts(planted, tmp_path):
    from models.baselines import evaluate_baselines
    from models.datasets import WindowReader
    from objectstore import open_store

    train, windows, labels = planted
    validation = _normal_windows(200, np.random.default_rng(9))
    everything = np.concatenate([train, validation, windows])
    splits = ["train"] * len(train) + ["validation"] * len(validation) + ["test"] * len(windows)
    all_labels = [0] * (len(train) + len(validation)) + labels.tolist()
    store = open_store(f"file://{tmp_path}")
    reader = WindowReader(store, [_window_part(store, everything, splits, all_labels)], steps=STEPS, features=FEATURES)

    results = evaluate_baselines(reader, threshold_method="quantile", target_false_alarm_rate=0.02, seed=1)

    assert set(results) == {"isolation_forest", "zscore"}
    for metrics in results.values():
        assert metrics["threshold"]["method"] == "quantile"
        assert metrics["evaluated_windows"] == len(windows)
        assert metrics["support_anomalous"] == 20
        assert metrics["pr_auc"] >= 0.8
