"""Prefect tasks that render the report and publish models, pointers and the run manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import layout
from flows.ledger import LEDGER_KEY, LedgerError, record_published
from flows.model_tasks import load_evaluation, scores_array
from flows.retries import storage_retries
from flows.settings import NetaeSettings
from flows.spark import spark_for
from models.champion import PromotionDecision, apply_decision
from models.threshold_checks import describe_false_alarm_check
from models.thresholds import Threshold
from reports import CaptureEntry, ModelSection, ReportInputs, render_report
from spark_jobs.extract_packets import CaptureStatus, read_packet_table
from spark_jobs.features import Preprocessing

REPORT_PACKET_ROWS = 200_000


@task(name="render-report", cache_policy=NO_CACHE)
def write_report(
    settings: NetaeSettings,
    run_id: str,
    statuses: list[CaptureStatus],
    model_keys: dict[str, str],
    thresholds: dict[str, Threshold],
    metrics: dict[str, dict],
) -> str:
    """Render the HTML report and store it; returns its key."""
    log = get_run_logger()
    store = settings.open_store()
    decoded = [status.capture_id for status in statuses if status.decoded]
    packets = read_packet_table(spark_for(settings), store, output_prefix=layout.PACKETS_PREFIX, capture_ids=decoded)
    # NOTE: the traffic plots use the first REPORT_PACKET_ROWS frames only, to bound driver memory.
    sample = packets.select("src_addr", "dst_addr", "frame_len", "timestamp_ns", "protocol").limit(REPORT_PACKET_ROWS).toPandas()

    sections = []
    for kind, model_key in model_keys.items():
        evaluation = load_evaluation(settings, model_key)
        labelled = len(evaluation) > 0 and evaluation["label"].notna().all()
        folder = model_key.rsplit("/", 1)[0] + "/"
        sections.append(
            ModelSection(
                kind=kind,
                version=run_id,
                threshold=thresholds[kind].value,
                threshold_method=thresholds[kind].method,
                threshold_params=thresholds[kind].params,
                window_start_ns=evaluation["start_ns"].to_numpy("int64") if len(evaluation) else scores_array(evaluation).astype("int64"),
                window_scores=scores_array(evaluation),
                window_labels=evaluation["label"].to_numpy("int64") if labelled else None,
                metrics=report_metrics(metrics[kind]),
                confusion=metrics[kind].get("confusion"),
                training_history=store.get_json(folder + "history.json"),
                false_alarms=metrics[kind].get("false_alarms"),
            )
        )

    inputs = ReportInputs(
        title="netae nightly retraining",
        run_id=run_id,
        created_utc=datetime.now(timezone.utc),
        captures=[
            CaptureEntry(
                capture_id=status.capture_id,
                source_key=status.key,
                frames=status.frames,
                status="decoded" if status.decoded else "set aside",
                reason=status.error,
            )
            for status in statuses
        ],
        packets=sample,
        models=sections,
        links={
            **{f"{kind} model": store.location(layout.model_prefix(kind, run_id)) for kind in model_keys},
            "packet table": store.location(layout.PACKETS_PREFIX),
            "validations": store.location(layout.validations_prefix(run_id)),
        },
    )
    key = layout.report_key(run_id)
    store.put_bytes(key, render_report(inputs).encode("utf-8"), content_type="text/html; charset=utf-8")
    log.info("Report written to %s", store.location(key))
    return key


def training_fingerprint(statuses: list[CaptureStatus], etags: dict[str, str], state: Preprocessing, window_counts: dict[str, int]) -> dict:
    """Describe the training data: captures with their ETags, the preprocessing and window counts.

    ``sha256`` digests all of it, so two versions trained on the same data and
    settings share a fingerprint.
    """
    document = {
        "captures": sorted(
            ({"key": status.key, "etag": etags.get(status.key, ""), "frames": status.frames} for status in statuses if status.decoded),
            key=lambda item: item["key"],
        ),
        "preprocessing": state.to_json(),
        "windows": window_counts,
    }
    document["sha256"] = hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()
    return document


def published_validations(store, run_id: str) -> list[str]:
    """Return the keys of the run's validation results and its Data Docs index, sorted.

    The list comes from the store, not from the tasks that wrote the results.
    So the manifest names every result the run left: the packet and window
    suites, the drift check (missing when it failed) and the Data Docs.
    """
    prefix = layout.validations_prefix(run_id)
    keys = [key for key in store.iter_keys(prefix) if key.endswith(".json") and "/" not in key[len(prefix):]]
    index = layout.data_docs_index_key(run_id)
    if store.exists(index):
        keys.append(index)
    return sorted(keys)


@task(name="publish", cache_policy=NO_CACHE, **storage_retries(LedgerError))
def publish(
    settings: NetaeSettings,
    run_id: str,
    statuses: list[CaptureStatus],
    state: Preprocessing,
    window_counts: dict[str, int],
    model_keys: dict[str, str],
    metrics: dict[str, dict],
    report_key: str,
    history: list[CaptureStatus] | None = None,
    capture_etags: dict[str, str] | None = None,
) -> dict:
    """Complete each model version, move the champion pointers it earned, and write the run manifest.

    A champion pointer moves only when the version's promotion decision
    promotes it. That decision is ``promotion`` in the model's metrics, made by
    ``flows.model_tasks.compare_with_champion``. The manifest's ``champion``
    records every decision with both scores.

    Order matters for readers. Every version gets all its files and then its
    ``manifest.json`` before the champion pointers move. The run manifest
    follows, then the capture ledger entries of ``statuses``. A retry after a
    failure part-way writes the same objects again.

    Args:
        history: captures consumed by earlier runs whose lake partitions this
            run also trained on; they enter the fingerprint and the manifest's
            ``history``, not the ledger.
        capture_etags: ETags of ``statuses`` taken when the run listed them;
            they win over a listing taken now, which may see a replaced capture.
    """
    log = get_run_logger()
    store = settings.open_store()
    history = history or []
    etags = {info.key: info.etag for info in store.list(settings.captures_prefix)}
    etags.update(capture_etags or {})
    fingerprint = training_fingerprint(statuses + history, etags, state, window_counts)
    published_utc = datetime.now(timezone.utc).isoformat()

    # Every version is completed before any pointer moves, so a storage failure
    # part-way leaves all champions as they were. A retry of this task rewrites
    # the same objects, and a manifest left by a failed attempt is not listed
    # among the version's files.
    for kind in model_keys:
        prefix = layout.model_prefix(kind, run_id)
        store.put_json(prefix + "preprocessing.json", state.to_json())
        store.put_json(prefix + "fingerprint.json", fingerprint)
        files = [key[len(prefix):] for key in store.iter_keys(prefix) if key != prefix + "manifest.json"]
        missing = [name for name in layout.MODEL_FILES if name not in files]
        if missing:
            raise RuntimeError(f"model {kind} version {run_id} is incomplete, missing {missing}; not publishing it")
        store.put_json(prefix + "manifest.json", {"kind": kind, "version": run_id, "files": files, "published_utc": published_utc})

    decisions: dict[str, dict] = {}
    for kind in model_keys:
        prefix = layout.model_prefix(kind, run_id)
        decision = promotion_decision(kind, run_id, metrics[kind])
        decisions[kind] = decision.to_json()
        apply_decision(store, layout.champion_key(kind), decision, prefix=prefix)
        log.info("Champion %s: %s (%s)", kind, f"version {run_id}" if decision.promote else "unchanged", decision.reason)

    manifest = {
        "run_id": run_id,
        "published_utc": published_utc,
        "captures": [
            {"key": status.key, "capture_id": status.capture_id, "etag": etags.get(status.key), "decoded": status.decoded,
             "frames": status.frames, "reason": status.error}
            for status in statuses
        ],
        "set_aside": [{"key": status.key, "reason": status.error} for status in statuses if not status.decoded],
        "history": [{"key": status.key, "capture_id": status.capture_id, "frames": status.frames} for status in history],
        "models": {kind: layout.model_prefix(kind, run_id) for kind in model_keys},
        "report": report_key,
        "validations": published_validations(store, run_id),
        "metrics": metrics,
        "baselines": next((values["baselines"] for values in metrics.values() if "baselines" in values), {}),
        "champion": decisions,
    }
    store.put_json(layout.run_manifest_key(run_id), manifest)
    record_published(store, statuses, run_id)
    log.info("Ledger %s: %d capture(s) consumed by run %s", store.location(LEDGER_KEY), len(statuses), run_id)

    create_markdown_artifact(
        markdown=metrics_markdown(run_id, metrics, store.location(report_key), manifest["set_aside"]),
        key="netae-retrain",
        description=f"netae retrain {run_id}",
    )
    return manifest


def promotion_decision(kind: str, run_id: str, metrics: dict) -> PromotionDecision:
    """Return the promotion decision stored in a model's metrics, or a promotion when it has none."""
    document = metrics.get("promotion")
    if document is None:
        return PromotionDecision(kind=kind, promote=True, reason="no promotion decision was recorded; promoted unchecked",
                                 challenger_version=run_id, champion_version=None, challenger_pr_auc=metrics.get("pr_auc"),
                                 champion_pr_auc=None, margin=0.0)
    return PromotionDecision(**document)


def report_metrics(metrics: dict) -> dict[str, float]:
    """Return the numeric metrics of one model for the report, with the champion comparison as numbers."""
    values = {name: value for name, value in metrics.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
    promotion = metrics.get("promotion")
    if promotion is not None:
        values["promoted"] = 1.0 if promotion["promote"] else 0.0
        if promotion.get("champion_pr_auc") is not None:
            values["champion_pr_auc"] = promotion["champion_pr_auc"]
    if metrics.get("oracle") is not None:
        values["oracle_f1"] = metrics["oracle"]["f1"]
    for kind, baseline in metrics.get("baselines", {}).items():
        if baseline.get("pr_auc") is not None:
            values[f"{kind}_pr_auc"] = baseline["pr_auc"]
    return values


def metrics_markdown(run_id: str, metrics: dict[str, dict], report_location: str, set_aside: list[dict]) -> str:
    """Return the markdown summary published as a Prefect artifact."""
    lines = [
        f"# netae retrain {run_id}",
        "",
        "Anomaly is the positive class.",
        "",
        "| model | accuracy | precision | recall | F1 | PR-AUC | flagged share | windows |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = dict(metrics)
    rows.update(next((values["baselines"] for values in metrics.values() if "baselines" in values), {}))
    for kind, values in rows.items():
        names = ("accuracy", "precision", "recall", "f1", "pr_auc")
        cells = [f"{values[name]:.3f}" if values.get(name) is not None else "n/a" for name in names]
        lines.append(f"| {kind} | {' | '.join(cells)} | {values['flagged_share']:.3f} | {values['evaluated_windows']} |")
    checks = [(kind, values["false_alarms"]) for kind, values in metrics.items() if values.get("false_alarms")]
    if checks:
        lines += ["", "False-alarm rate of normal windows against the threshold's promise:"]
        lines += [f"- {kind}: {describe_false_alarm_check(check)}" for kind, check in checks]
    decisions = [(kind, values["promotion"]) for kind, values in metrics.items() if "promotion" in values]
    if decisions:
        lines += ["", "Champion decisions:"]
        lines += [f"- {kind}: {'promoted' if item['promote'] else 'not promoted'}, {item['reason']}" for kind, item in decisions]
    lines += ["", f"Report: `{report_location}`"]
    if set_aside:
        lines += ["", "Set aside:"] + [f"- `{item['key']}`: {item['reason']}" for item in set_aside]
    return "\n".join(lines)
