"""Prefect tasks of the model stages: train, calibrate the threshold, evaluate.

Each task reads what it needs from the object store and writes its output into
the model version folder, so tasks pass keys, not models or arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import layout
from flows.settings import NetaeSettings
from flows.store_frames import get_frame, put_frame
from models.artifacts import model_from_bytes, model_to_bytes
from models.datasets import WindowReader, evaluation_windows, normal_windows_of
from models.baselines import evaluate_baselines
from models.champion import PromotionDecision, decide_promotion, read_champion
from models.metrics import AttackSpan, binary_metrics, flagged_share, oracle_metrics, per_attack_metrics, ranking_metrics
from models.scoring import reconstruction_errors
from models.threshold_checks import FALSE_ALARM_PERIODS, describe_false_alarm_check, false_alarm_check
from models.thresholds import Threshold, fit_threshold
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
    """Set the threshold with ``settings.threshold_method`` on the error of normal validation windows.

    Falls back to the normal training windows, with a warning, when the
    validation split produced no window (very short captures).
    """
    log = get_run_logger()
    store = settings.open_store()
    model = model_from_bytes(store.get_bytes(model_key))
    reader = _reader(settings, windows)
    selector = normal_windows_of("validation")
    scores = reconstruction_errors(model, reader.iter_windows(selector))
    if scores.size == 0:
        log.warning("No normal validation windows; calibrating %s on training windows, which biases the threshold low", kind)
        selector = normal_windows_of("train")
        scores = reconstruction_errors(model, reader.iter_windows(selector))
    threshold = fit_threshold(
        settings.threshold_method, scores, k=settings.threshold_k,
        target_false_alarm_rate=settings.target_false_alarm_rate, pot_initial_quantile=settings.pot_initial_quantile,
    )
    folder = model_key.rsplit("/", 1)[0] + "/"
    store.put_json(folder + "threshold.json", threshold.to_json())
    put_frame(store, folder + layout.CALIBRATION_FILE, reader.metadata(selector).assign(score=scores))
    log.info("%s threshold %.6g by %s over %d normal windows: %s", kind, threshold.value, threshold.method,
             scores.size, threshold.params)
    return threshold


@task(name="evaluate-model", task_run_name="evaluate-{kind}", cache_policy=NO_CACHE)
def evaluate_model(settings: NetaeSettings, kind: str, windows: WindowSet, model_key: str, threshold: Threshold) -> dict:
    """Score the evaluation windows and compute metrics.

    With labels: accuracy, precision, recall and F1 of the anomaly class, the
    confusion matrix, ROC-AUC and PR-AUC, recall and detection delay per
    attack named in the labels files, and under ``oracle`` the same metrics at
    the best-F1 threshold chosen with those labels, as a reference only.
    Without labels: the share of windows flagged. ``false_alarms`` contains
    the threshold's promised false-alarm rate and the rates measured on normal
    windows (see ``check_false_alarms``). The metrics also hold the
    baselines' results (unless ``run_baselines`` is off) and the champion
    decision (``promotion``). The scores go to ``evaluation.parquet`` in the
    model folder for the report.
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
        truth = metadata.loc[labelled, "label"].to_numpy(int)
        metrics = binary_metrics(truth, flagged[labelled.to_numpy()])
        metrics.update(ranking_metrics(truth, scores[labelled.to_numpy()]))
        metrics["labelled_windows"] = int(labelled.sum())
        oracle = oracle_metrics(truth, scores[labelled.to_numpy()])
        if oracle is not None:
            metrics["oracle"] = oracle
    else:
        metrics = {"confusion": None}
    metrics["flagged_share"] = flagged_share(flagged)
    metrics["evaluated_windows"] = int(len(metadata))
    metrics["threshold_method"] = threshold.method
    metrics["false_alarms"] = check_false_alarms(store, model_key, metadata, scores, threshold, kind, log)
    spans = attack_spans(settings, sorted(windows.frames_per_capture))
    if spans and labelled.any():
        metrics["attacks"] = per_attack_metrics(metadata, flagged, spans)

    folder = model_key.rsplit("/", 1)[0] + "/"
    if settings.run_baselines:
        metrics["baselines"] = run_baselines(settings, windows, model_key)
    decision = compare_with_champion(settings, kind, windows, model_key, metrics.get("pr_auc"))
    metrics["promotion"] = decision.to_json()
    put_frame(store, folder + "evaluation.parquet", metadata)
    store.put_json(folder + "metrics.json", metrics)
    summary = {name: metrics[name] for name in ("accuracy", "precision", "recall", "f1") if name in metrics}
    log.info("%s on %d evaluation windows: flagged %.1f%%, %s", kind, len(metadata), 100 * metrics["flagged_share"], summary)
    return metrics


def check_false_alarms(store, model_key: str, metadata: pd.DataFrame, scores: np.ndarray, threshold: Threshold,
                       kind: str, log) -> dict:
    """Measure the threshold's false-alarm rate on normal windows beside the rate it promises.

    The same period is the normal validation windows, cross-fitted so that no
    window is flagged by a threshold calibrated on it. Their scores come from
    the ``calibration.parquet`` that ``calibrate_threshold`` stored beside the
    model, so no window is scored twice. The later period is the test split's
    windows labelled normal, from the evaluation ``metadata`` and ``scores``.
    Without labels it has no rate. A rate above ``PROMISE_TOLERANCE`` times
    the promise is logged as a warning, because the threshold then flags more
    benign traffic than it was set for.
    """
    calibration = get_frame(store, model_key.rsplit("/", 1)[0] + "/" + layout.CALIBRATION_FILE)
    check = false_alarm_check(
        pd.concat([calibration, metadata], ignore_index=True),
        np.concatenate([scores_array(calibration), scores]),
        threshold,
    )
    log.info("%s false alarms: %s", kind, describe_false_alarm_check(check))
    broken = [period.replace("_", " ") for period in FALSE_ALARM_PERIODS if check[period]["kept"] is False]
    if broken:
        log.warning("%s threshold (%s) flags more than %g times the false-alarm rate it promises in the %s. Expect more "
                    "benign alarms than promised (docs/operations.md, Alarm rates)", kind, threshold.method,
                    check["tolerance"], " and the ".join(broken))
    return check


def load_evaluation(settings: NetaeSettings, model_key: str) -> pd.DataFrame:
    """Read the evaluation scores that ``evaluate_model`` stored beside the model."""
    frame = get_frame(settings.open_store(), model_key.rsplit("/", 1)[0] + "/evaluation.parquet")
    return frame.sort_values("start_ns", kind="stable").reset_index(drop=True) if len(frame) else frame


def scores_array(frame: pd.DataFrame) -> np.ndarray:
    """Return the score column as float64, empty when the frame is."""
    return frame["score"].to_numpy(np.float64) if len(frame) else np.zeros(0)


def run_baselines(settings: NetaeSettings, windows: WindowSet, model_key: str) -> dict:
    """Return the baselines' metrics on the run's windows, fitting them once per run.

    The first model kind to ask fits and stores them under
    ``models/baselines/<run>/metrics.json``; later kinds read that file.
    """
    log = get_run_logger()
    store = settings.open_store()
    run_id = model_key.split("/")[2]
    key = layout.model_prefix("baselines", run_id) + "metrics.json"
    if store.exists(key):
        return store.get_json(key)
    results = evaluate_baselines(
        _reader(settings, windows), threshold_method=settings.threshold_method, k=settings.threshold_k,
        target_false_alarm_rate=settings.target_false_alarm_rate,
        pot_initial_quantile=settings.pot_initial_quantile, seed=settings.seed,
    )
    store.put_json(key, results)
    for kind, values in results.items():
        log.info("Baseline %s: PR-AUC %s, F1 %s, flagged %.1f%%", kind, values.get("pr_auc"), values.get("f1"),
                 100 * values["flagged_share"])
    return results


def champion_pr_auc(settings: NetaeSettings, pointer: dict, windows: WindowSet, run_id: str) -> float | None:
    """Score the champion on this run's evaluation windows, cut with the champion's own preprocessing.

    The same frames, split the same way, are windowed with the champion's saved
    preprocessing state, so both models are compared on one evaluation set
    even when their encoders and scalers differ. Returns None without labels
    of both classes.
    """
    from flows.spark import spark_for
    from spark_jobs.extract_packets import read_packet_table
    from spark_jobs.features import Preprocessing
    from spark_jobs.windows import assign_splits, build_windows, feature_rows

    store = settings.open_store()
    state = Preprocessing.from_json(store.get_json(pointer["prefix"] + "preprocessing.json"))
    model = model_from_bytes(store.get_bytes(pointer["prefix"] + "model.keras"))
    spark = spark_for(settings)
    packets = read_packet_table(spark, store, output_prefix=layout.PACKETS_PREFIX, capture_ids=sorted(windows.frames_per_capture))
    split = assign_splits(packets, train_fraction=settings.train_fraction, validation_fraction=settings.validation_fraction).cache()
    rows = feature_rows(split, state.feature_set).cache()
    try:
        prefix = f"{layout.windows_prefix(run_id)}champion-{pointer['kind']}-{pointer['version']}/"
        champion_windows = build_windows(spark, split, state, store, output_prefix=prefix, rows=rows)
    finally:
        rows.unpersist()
        split.unpersist()
    reader = WindowReader(store, champion_windows.parts, steps=champion_windows.steps, features=champion_windows.features)
    labels = reader.metadata(evaluation_windows)["label"]
    scores = reconstruction_errors(model, reader.iter_windows(evaluation_windows))
    labelled = labels.notna().to_numpy()
    return ranking_metrics(labels[labelled].to_numpy(int), scores[labelled])["pr_auc"]


def compare_with_champion(
    settings: NetaeSettings, kind: str, windows: WindowSet, model_key: str, challenger_pr_auc: float | None
) -> PromotionDecision:
    """Decide whether the model at ``model_key`` replaces the champion of ``kind``; stores the decision.

    The decision lands in ``promotion.json`` beside the model; ``publish`` moves
    the champion pointer only when it promotes.
    """
    log = get_run_logger()
    store = settings.open_store()
    run_id = model_key.split("/")[2]
    pointer = read_champion(store, layout.champion_key(kind))
    champion_score = None
    if pointer is not None and challenger_pr_auc is not None:
        try:
            champion_score = champion_pr_auc(settings, pointer, windows, run_id)
        except (ValueError, KeyError, OSError) as error:
            log.warning("Champion %s version %s could not be scored on run %s: %s", kind, pointer.get("version"), run_id, error)
    decision = decide_promotion(
        kind, challenger_version=run_id, challenger_pr_auc=challenger_pr_auc,
        champion_version=pointer["version"] if pointer else None, champion_pr_auc=champion_score,
        margin=settings.promotion_margin,
    )
    store.put_json(model_key.rsplit("/", 1)[0] + "/promotion.json", decision.to_json())
    log.info("%s %s: %s", kind, "promoted" if decision.promote else "not promoted", decision.reason)
    return decision


def attack_spans(settings: NetaeSettings, capture_ids: list[str]) -> list[AttackSpan]:
    """Return the anomalous frame ranges of the labels files beside the captures, with their attack names.

    The capture's key comes from its packet-table partition manifest. The spans
    carry no start time, so detection delays are measured from the start of
    the attack's first window, which can only lengthen them.
    """
    from spark_jobs.captures import labels_key_for
    from spark_jobs.extract_packets import MANIFEST_NAME, partition_prefix
    from spark_jobs.labels import parse_labels

    store = settings.open_store()
    spans = []
    for capture_id in capture_ids:
        manifest_key = partition_prefix(layout.PACKETS_PREFIX, capture_id) + MANIFEST_NAME
        if not store.exists(manifest_key):
            continue
        labels_key = labels_key_for(store.get_json(manifest_key)["source_key"])
        if not store.exists(labels_key):
            continue
        ranges = parse_labels(store.get_bytes(labels_key).decode("utf-8"), source=store.location(labels_key))
        spans += [AttackSpan(capture_id, item.attack, item.first_frame, item.last_frame) for item in ranges if item.label == 1]
    return spans
