"""The nightly ``retrain`` flow: captures in, champion models and a report out."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows import layout
from flows.data_tasks import decode_captures, make_windows, pull_captures, validate_packets, validate_windows
from flows.ledger import LEDGER_KEY, record_decoded, record_set_aside
from flows.model_tasks import calibrate_threshold, evaluate_model, train_model
from flows.publish_tasks import publish, write_report
from flows.settings import NetaeSettings
from models.autoencoders import MODEL_KINDS
from spark_jobs.extract_packets import CaptureStatus


class NoUsableCaptureError(RuntimeError):
    """No capture under the captures prefix could be decoded."""


@flow(name="retrain", log_prints=False)
def retrain(settings: NetaeSettings | None = None, run_id: str | None = None) -> dict:
    """Decode the captures, train both autoencoders, calibrate, evaluate, report and publish.

    Only captures that are new or changed since the last published run are
    decoded (see ``flows/ledger.py``). Training also reads the lake partitions
    of captures that earlier runs consumed, unless ``train_on_lake_history`` is
    off. When no capture is new, the run logs so and returns without training.

    Args:
        settings: run settings; read from ``NETAE_*`` variables when omitted.
        run_id: id of this run; a new time-based id when omitted.

    Returns:
        The run manifest that was published (run id, captures, models, report),
        or, when nothing was new, ``{"run_id", "skipped", "unchanged"}`` and
        empty ``captures``, ``set_aside`` and ``metrics``.

    Raises:
        NoUsableCaptureError: when none of the new captures could be decoded;
            nothing is published, and the ledger sets those captures aside.
    """
    settings = settings or NetaeSettings()
    run_id = run_id or layout.new_run_id()
    log = get_run_logger()
    log.info("Run %s: storage %s, captures under %s", run_id, settings.open_store().url, settings.captures_prefix)

    intake = pull_captures(settings)
    if not intake.has_new_work and intake.unchanged:
        reason = (
            f"no new or changed capture under {settings.captures_prefix!r}: all {intake.unchanged} were consumed "
            "by earlier runs; store a new capture or replace one to retrain"
        )
        log.info("Run %s skips training: %s", run_id, reason)
        return {"run_id": run_id, "skipped": reason, "unchanged": intake.unchanged,
                "captures": [], "set_aside": [], "metrics": {}}

    fresh = decode_captures(settings, intake.new, run_id)
    record_decoded(settings.open_store(), fresh, intake, run_id)
    statuses = intake.resumed + fresh
    decoded = [status.capture_id for status in statuses if status.decoded]
    if not decoded:
        store = settings.open_store()
        reasons = "; ".join(_failure(status) for status in statuses) or "no capture found"
        message = f"no capture could be decoded under {settings.captures_prefix!r} ({reasons})"
        if statuses:
            record_set_aside(store, statuses, run_id)
            message += f"; set aside in {store.location(LEDGER_KEY)}, so later runs skip them until they are stored again"
        raise NoUsableCaptureError(message)

    # The packet suite checks this run's partitions; earlier ones passed it when they were decoded.
    validate_packets(settings, decoded, run_id)
    training_ids = decoded + [status.capture_id for status in intake.history]
    state, windows = make_windows(settings, training_ids, run_id)
    validate_windows(settings, windows, run_id)

    model_keys, thresholds, metrics = {}, {}, {}
    for kind in MODEL_KINDS:
        model_keys[kind] = train_model(settings, kind, windows, run_id)
        thresholds[kind] = calibrate_threshold(settings, kind, windows, model_keys[kind])
        metrics[kind] = evaluate_model(settings, kind, windows, model_keys[kind], thresholds[kind])

    report_key = write_report(settings, run_id, statuses + intake.history, model_keys, thresholds, metrics)
    manifest = publish(
        settings, run_id, statuses, state, windows.counts, model_keys, metrics, report_key,
        history=intake.history, capture_etags=intake.etags,
    )
    log.info("Run %s complete; report at %s", run_id, settings.open_store().location(report_key))
    return manifest


def _failure(status: CaptureStatus) -> str:
    """Return ``key: error`` for a capture that failed to decode, or the error alone when it already starts with the key."""
    error = status.error or "not decoded"
    return error if error.startswith(status.key) else f"{status.key}: {error}"
