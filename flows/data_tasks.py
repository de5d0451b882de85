"""Prefect tasks of the data stages: find captures, decode, validate, window."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations import packet_suite, validate_dataframe, window_suite, window_summary_frame
from expectations.data_docs import publish_data_docs
from expectations.drift_suite import check_drift, drift_summary_frame
from flows import layout
from flows.ledger import CaptureIntake, LedgerError, plan_intake
from flows.retries import storage_retries
from flows.settings import NetaeSettings
from flows.spark import spark_for
from models.datasets import WindowReader
from spark_jobs.captures import CaptureRef
from spark_jobs.extract_packets import CaptureStatus, extract_packets, read_packet_table
from spark_jobs.features import Preprocessing
from spark_jobs.windows import (
    WindowSet,
    assign_splits,
    baseline_bin_counts,
    build_windows,
    feature_rows,
    fit_on_training_split,
)


@task(name="pull-captures", cache_policy=NO_CACHE, **storage_retries(LedgerError))
def pull_captures(settings: NetaeSettings) -> CaptureIntake:
    """List the captures under the captures prefix and keep the new or changed ones.

    The capture ledger (``flows/ledger.py``) decides: a capture whose key, ETag
    and labels file ETag a published run already consumed is skipped, and one
    that a failed run already decoded is resumed without decoding it again.
    """
    log = get_run_logger()
    store = settings.open_store()
    intake = plan_intake(
        store, settings.captures_prefix, layout.PACKETS_PREFIX, include_history=settings.train_on_lake_history
    )
    log.info(
        "Under %s: %d new or changed capture(s), %d resumed from an unpublished run, %d unchanged; "
        "%d earlier capture(s) in the lake available to train on",
        store.location(settings.captures_prefix), len(intake.new), len(intake.resumed), intake.unchanged,
        len(intake.history),
    )
    for ref in intake.new:
        log.info("Capture %s -> %s (labels: %s)", ref.key, ref.capture_id, ref.labels_key or "none")
    for status in intake.resumed:
        log.info("Capture %s -> %s resumed: decoded by an earlier run that did not publish", status.key, status.capture_id)
    return intake


@task(name="decode-captures", cache_policy=NO_CACHE)
def decode_captures(settings: NetaeSettings, refs: list[CaptureRef], run_id: str) -> list[CaptureStatus]:
    """Decode every capture into the packet table with the Spark extraction job.

    A capture that cannot be read is set aside with its reason; the others go on.
    """
    log = get_run_logger()
    spark = spark_for(settings)
    statuses = extract_packets(
        spark, settings.open_store(), refs, output_prefix=layout.PACKETS_PREFIX, run_id=run_id,
        chunk_bytes=settings.capture_chunk_mb << 20,
    )
    for number, status in enumerate(statuses, start=1):
        if status.decoded:
            log.info("Decoded %d/%d %s: %d frames%s", number, len(statuses), status.key, status.frames,
                     f" (warning: {status.error})" if status.error else "")
        else:
            log.warning("Set aside %d/%d %s: %s", number, len(statuses), status.key, status.error)
    return statuses


@task(name="validate-packets", cache_policy=NO_CACHE)
def validate_packets(settings: NetaeSettings, capture_ids: list[str], run_id: str) -> dict:
    """Run the packet suite on the run's packet table and publish the result."""
    log = get_run_logger()
    store = settings.open_store()
    packets = read_packet_table(spark_for(settings), store, output_prefix=layout.PACKETS_PREFIX, capture_ids=capture_ids)
    outcome = validate_dataframe(packets, packet_suite())
    key = layout.validation_key(run_id, outcome.suite_name)
    store.put_json(key, outcome.result)
    log.info("Packet suite: success=%s, %d expectations, %d failed; result at %s",
             outcome.success, outcome.evaluated, len(outcome.failed), store.location(key))
    for failure in outcome.failed:
        log.warning("Packet expectation failed: %s", failure)
    return {"suite": outcome.suite_name, "success": outcome.success, "failed": outcome.failed, "key": key}


@task(name="build-windows", cache_policy=NO_CACHE)
def make_windows(settings: NetaeSettings, capture_ids: list[str], run_id: str) -> tuple[Preprocessing, WindowSet]:
    """Split the packet table, fit preprocessing on the training split and cut windows."""
    log = get_run_logger()
    store = settings.open_store()
    spark = spark_for(settings)
    packets = read_packet_table(spark, store, output_prefix=layout.PACKETS_PREFIX, capture_ids=capture_ids)
    split = assign_splits(
        packets, train_fraction=settings.train_fraction, validation_fraction=settings.validation_fraction
    ).cache()
    rows = feature_rows(split, settings.feature_set).cache()

    try:
        state, fitted_rows = fit_on_training_split(
            split, window_length=settings.window_length, window_stride=settings.window_stride,
            training_window_stride=settings.training_window_stride,
            feature_set_name=settings.feature_set, scaler=settings.scaler, out_of_range=settings.out_of_range,
            window_mode=settings.window_mode, rows=rows,
        )
        log.info("Fitted %s preprocessing (%s scaler) on %d training rows", state.feature_set, state.scaler, fitted_rows)
        windows = build_windows(spark, split, state, store, output_prefix=layout.windows_prefix(run_id), rows=rows)
        check_drift_against_baseline(settings, store, rows, state, run_id)
    finally:
        rows.unpersist()
        split.unpersist()

    for split_name, counts in windows.out_of_range_counts.items():
        log.info("Values outside the training range in %s (%s): %s", split_name, settings.out_of_range, counts)
    for split_name, counts in windows.unknown_category_counts.items():
        log.info("Categories unseen in training in %s (coded unknown): %s", split_name, counts)
    for capture_id in windows.short_captures:
        log.warning(
            "Capture %s has %d frames, fewer than one window of %d per split: it produced no window",
            capture_id, windows.frames_per_capture[capture_id], settings.window_length,
        )
    if windows.short_segments:
        log.info("%d %s segment(s) had fewer rows than one window of %d and produced no window",
                 windows.short_segments, settings.window_mode, settings.window_length)
    log.info("Windows per split: %s, in %d part(s)", windows.counts, len(windows.parts))
    if sum(windows.counts.values()) == 0:
        raise ValueError(
            f"no windows: every capture is shorter than one window of {settings.window_length} frames "
            "per split; lower NETAE_WINDOW_LENGTH or add longer captures"
        )
    return state, windows


@task(name="validate-windows", cache_policy=NO_CACHE)
def validate_windows(settings: NetaeSettings, windows: WindowSet, run_id: str) -> dict:
    """Run the window suite (finite, inside the scaler's bounds, expected shape), publish it and the run's Data Docs."""
    log = get_run_logger()
    store = settings.open_store()
    reader = WindowReader(store, windows.parts, steps=windows.steps, features=windows.features)
    summaries = [window_summary_frame(block) for block in reader.iter_windows()]
    summary = pd.concat(summaries, ignore_index=True) if summaries else window_summary_frame(
        np.zeros((0, windows.steps, windows.features), dtype=np.float32)
    )
    # With out-of-range values kept (flag), any finite float32 is a valid window value.
    lower, upper = windows.value_bounds or (float(np.finfo(np.float32).min), float(np.finfo(np.float32).max))
    suite = window_suite(steps=windows.steps, features=windows.features, lower=lower, upper=upper)
    outcome = validate_dataframe(summary, suite)
    key = layout.validation_key(run_id, outcome.suite_name)
    store.put_json(key, outcome.result)
    log.info("Window suite on %d windows: success=%s; result at %s", len(summary), outcome.success, store.location(key))
    publish_run_data_docs(store, run_id)
    if not outcome.success:
        raise ValueError(f"the windows failed validation, see {store.location(key)}: {outcome.failed}")
    return {"suite": outcome.suite_name, "success": outcome.success, "failed": outcome.failed, "key": key}


def status_table(statuses: list[CaptureStatus]) -> list[dict]:
    """Return the capture statuses as JSON-able dicts for the run manifest."""
    return [asdict(status) for status in statuses]


def champion_preprocessing(store, feature_set_name: str) -> tuple[str, Preprocessing] | None:
    """Return the key and state of the first champion (by key) fitted on ``feature_set_name``, or None."""
    for info in sorted(store.list("models/"), key=lambda item: item.key):
        if not info.key.endswith("/champion.json"):
            continue
        prefix = store.get_json(info.key).get("prefix", "")
        key = prefix + "preprocessing.json"
        if prefix and store.exists(key):
            state = Preprocessing.from_json(store.get_json(key))
            if state.feature_set == feature_set_name and state.baseline:
                return key, state
    return None


def check_drift_against_baseline(settings: NetaeSettings, store, rows, state: Preprocessing, run_id: str) -> dict:
    """Compare this run's feature distributions with a training baseline and publish the drift result.

    With a champion fitted on the same feature set, all of this run's rows are
    compared with the champion's training baseline: has the new data moved away
    from what the serving model learned? Without one, this run's validation and
    test rows are compared with its own training baseline. Drift is logged and
    published under ``validations/<run>/drift.json``; it never stops the run.
    """
    log = get_run_logger()
    champion = champion_preprocessing(store, state.feature_set)
    if champion is not None:
        source, baseline, splits = champion[0], champion[1].baseline, None
    else:
        source, baseline, splits = "this run's training split", state.baseline, ("validation", "test")
    try:
        summary = drift_summary_frame(baseline_bin_counts(rows, baseline, splits=splits), baseline)
        report = check_drift(summary, psi_max=settings.drift_psi_max, ks_max=settings.drift_ks_max)
    except Exception as error:  # noqa: BLE001 - the drift check informs; it must not fail the run
        log.warning("Drift check against %s failed: %s: %s", source, type(error).__name__, error)
        return {"suite": "drift", "success": None, "moved": [], "key": None}
    key = layout.validation_key(run_id, report.outcome.suite_name)
    store.put_json(key, report.outcome.result)
    if report.moved:
        first_moved = ", ".join(report.moved[:10]) + (" ..." if len(report.moved) > 10 else "")
        log.warning("Drift against %s in %d feature(s): %s; full list at %s", source, len(report.moved),
                    first_moved, store.location(key))
    else:
        log.info("No drift against %s over %d feature(s); result at %s", source, len(summary), store.location(key))
    return {"suite": report.outcome.suite_name, "success": report.outcome.success, "moved": report.moved, "key": key}


def publish_run_data_docs(store, run_id: str) -> list[str]:
    """Build Data Docs from every validation result the run has published so far, under ``data_docs/``.

    Data Docs are a view for people, so a failure to build them is logged and not raised.
    """
    log = get_run_logger()
    folder = layout.validations_prefix(run_id)
    results = {
        info.key[len(folder):].removesuffix(".json"): store.get_json(info.key)
        for info in store.list(folder)
        if info.key.endswith(".json") and "/" not in info.key[len(folder):]
    }
    try:
        keys = publish_data_docs(results, store, layout.data_docs_prefix(run_id), run_name=run_id)
    except Exception as error:  # noqa: BLE001 - GX rendering can fail in many ways; the run goes on
        log.warning("Data Docs for run %s were not built: %s: %s", run_id, type(error).__name__, error)
        return []
    log.info("Data Docs at %s", store.location(layout.data_docs_index_key(run_id)))
    return keys
