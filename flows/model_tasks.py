"""Prefect tasks of the model stages: train, calibrate the threshold, evaluate.

Each task reads what it needs from the object store and writes its output into
the model version folder, so tasks pass keys, not models or arrays.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import layout
from flows.settings import NetaeSettings
from models.artifacts import model_from_bytes, model_to_bytes
from models.datasets import WindowReader, evaluation_windows, normal_windows_of
from models.metrics import binary_metrics, flagged_share
from models.scoring import reconstruction_errors
from models.thresholds import Threshold, mean_k_std
from models.training import TrainingConfig, train_autoencoder
from spark_jobs.windows import WindowSet


def training_config(settings: NetaeSettings) -> TrainingConfig:
    """Return the training settings of a model from netae's settings."""
    return TrainingConfig(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        patience=settings.early_stopping_patience,
        learning_rate=settings.learning_rate,
        lstm_units=settings.lstm_units,
        conv_filters=settings.conv_filters,
        conv_kernel_size=settings.conv_kernel_size,
        seed=settings.seed,
    )


def _reader(settings: NetaeSettings, windows: WindowSet) -> WindowReader:
    return WindowReader(settings.open_store(), windows.parts, steps=windows.steps, features=windows.features)


@task(name="train-model", task_run_name="train-{kind}", cache_policy=NO_CACHE)
def train_model(settings: NetaeSettings, kind: str, windows: WindowSet, run_id: str) -> str:
    """Train one autoencoder and store it; returns the key of ``model.keras``."""
    log = get_run_logger()
    store = settings.open_store()
    model, history = train_autoencoder(kind, _reader(settings, windows), training_config(settings), log=log)
    prefix = layout.model_prefix(kind, run_id)
    store.put_bytes(prefix + "model.keras", model_to_bytes(model))
    store.put_json(prefix + "history.json", history)
    log.info("Trained %s for %d epoch(s); stored at %s", kind, len(history.get("loss", [])), store.location(prefix))
    return prefix + "model.keras"


@task(name="calibrate-threshold", task_run_name="threshold-{kind}", cache_policy=NO_CACHE)
def calibrate_threshold(settings: NetaeSettings, kind: str, windows: WindowSet, model_key: str) -> Threshold:
    """Set the threshold at mean + k std of the error on normal validation windows.

    Falls back to the normal training windows, with a warning, when the
    validation split produced no window (very short captures).
    """
    log = get_run_logger()
    store = settings.open_store()
    model = model_from_bytes(store.get_bytes(model_key))
    reader = _reader(settings, windows)
    scores = reconstruction_errors(model, reader.iter_windows(normal_windows_of("validation")))
    if scores.size == 0:
        log.warning("No normal validation windows; calibrating %s on training windows, which biases the threshold low", kind)
        scores = reconstruction_errors(model, reader.iter_windows(normal_windows_of("train")))
    threshold = mean_k_std(scores, k=settings.threshold_k)
    store.put_json(model_key.rsplit("/", 1)[0] + "/threshold.json", threshold.to_json())
    log.info("%s threshold %.6g (mean %.6g + %.1f x std %.6g over %d windows)", kind, threshold.value,
             threshold.params["mean"], settings.threshold_k, threshold.params["std"], scores.size)
    return threshold


@task(name="evaluate-model", task_run_name="evaluate-{kind}", cache_policy=NO_CACHE)
def evaluate_model(settings: NetaeSettings, kind: str, windows: WindowSet, model_key: str, threshold: Threshold) -> dict:
    """Score the evaluation windows and compute metrics.

    With labels: accuracy, precision, recall and F1 of the anomaly class and the
    confusion matrix. Without labels: the share of windows flagged. The scores go
    to ``evaluation.parquet`` in the model folder for the report.
    """
    log = get_run_logger()
    store = settings.open_store()
    model = model_from_bytes(store.get_bytes(model_key))
    reader = _reader(settings, windows)
    metadata = reader.metadata(evaluation_windows)
    scores = reconstruction_errors(model, reader.iter_windows(evaluation_windows))
    flagged = threshold.flag(scores)
    metadata = metadata.assign(score=scores, flagged=flagged)

    labelled = metadata["label"].notna()
    if labelled.any():
        metrics = binary_metrics(metadata.loc[labelled, "label"].to_numpy(), flagged[labelled.to_numpy()])
        metrics["labelled_windows"] = int(labelled.sum())
    else:
        metrics = {"confusion": None}
    metrics["flagged_share"] = flagged_share(flagged)
    metrics["evaluated_windows"] = int(len(metadata))

    folder = model_key.rsplit("/", 1)[0] + "/"
    buffer = io.BytesIO()
    metadata.to_parquet(buffer, index=False)
    store.put_bytes(folder + "evaluation.parquet", buffer.getvalue())
    store.put_json(folder + "metrics.json", metrics)
    summary = {name: metrics[name] for name in ("accuracy", "precision", "recall", "f1") if name in metrics}
    log.info("%s on %d evaluation windows: flagged %.1f%%, %s", kind, len(metadata), 100 * metrics["flagged_share"], summary)
    return metrics


def load_evaluation(settings: NetaeSettings, model_key: str) -> pd.DataFrame:
    """Read the evaluation scores that ``evaluate_model`` stored beside the model."""
    data = settings.open_store().get_bytes(model_key.rsplit("/", 1)[0] + "/evaluation.parquet")
    frame = pd.read_parquet(io.BytesIO(data))
    return frame.sort_values("start_ns", kind="stable").reset_index(drop=True) if len(frame) else frame


def scores_array(frame: pd.DataFrame) -> np.ndarray:
    """Return the score column as float64, empty when the frame is."""
    return frame["score"].to_numpy(np.float64) if len(frame) else np.zeros(0)
