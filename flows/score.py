"""The ad hoc ``score`` flow: one capture in, the champions' verdict and an analyst report out.

Steps, one task each:
    1. Load both champions (``models/<kind>/champion.json`` -> version folder):
       model, preprocessing state and threshold. A missing champion stops the run
       before anything is uploaded or decoded.
    2. Stage the capture: a key in the store is used as it is, a local file is
       uploaded first under ``adhoc/captures/<run>/``.
    3. Decode it with the Spark extraction job into ``lake/adhoc/<run>/packets/``.
    4. Cut every window of the capture with the champions' preprocessing, the way
       training cuts them, with all frames as one segment, into
       ``lake/adhoc/<run>/windows/``.
    5. Score the windows with each champion against its threshold; store the
       scores and the worst reconstructed features of the top flagged windows.
    6. Render the report, export the flagged frames as a commented pcapng and
       publish both under ``reports/adhoc/<run>/``, plus Prefect artifacts.

Score contract: see ``models``. A window is flagged when its reconstruction MSE is
strictly greater than its model's threshold.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import Field, SecretStr, model_validator
from pyspark.sql import functions as F

from flows import layout
from flows.retries import storage_retries
from flows.settings import NetaeSettings
from flows.spark import spark_for
from flows.store_frames import get_frame, put_frame
from flows.score_windows import ROW_FRAME_COLUMNS, WindowFrames, feature_errors, frame_comments, window_hosts
from flows.wireshark_export import display_filter, read_frames, write_pcapng
from models.artifacts import model_from_bytes
from models.autoencoders import MODEL_KINDS
from models.datasets import WindowReader
from models.derived_scores import host_scores
from models.metrics import binary_metrics, flagged_share
from models.scoring import reconstruction_errors
from models.threshold_checks import PROMISE_TOLERANCE, keeps_promise, threshold_promise
from models.thresholds import Threshold
from objectstore import ObjectStore
from objectstore.base import StorageError, validate_key
from reports.inputs import ModelSection
from reports.pseudonyms import Pseudonymizer
from reports.score_inputs import FRAME_COLUMNS, FlaggedWindow, ScoreReportInputs, pseudonymize_inputs
from reports.score_report import render_score_report
from spark_jobs.captures import CaptureRef, capture_id_for_key, labels_key_for
from spark_jobs.decoder.drilldown import wireshark_info
from spark_jobs.decoder.errors import CaptureError
from spark_jobs.extract_packets import CaptureStatus, extract_packets, read_packet_table
from spark_jobs.features import Preprocessing, feature_set
from spark_jobs.windows import WindowSet, build_windows, feature_rows


# Local files scored ad hoc are uploaded here, outside the default captures/
# prefix, so the nightly retrain never trains on captures an analyst scored.
ADHOC_CAPTURES_PREFIX = "adhoc/captures/"
TOP_FEATURES = 3
REPORT_PACKET_ROWS = 200_000
UNWINDOWED_FRAMES_SHOWN = 100
# Highest-scoring hosts per model in the run summary that the CLI prints.
TOP_HOSTS_SUMMARY = 3
TSHARK_TIMEOUT_S = 300


class MissingChampionError(RuntimeError):
    """A model kind has no champion, so there is nothing to score with."""


class CaptureNotDecodedError(RuntimeError):
    """The capture to score could not be decoded."""


class ScoreSettings(NetaeSettings):
    """Settings of a score run: netae's settings plus the report's privacy and size options."""

    pseudonymize: bool = Field(
        False, description="Replace IP and MAC addresses in the report and artifacts by keyed pseudonyms."
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the pseudonyms, at least 16 bytes; from the environment only."
    )
    top_flagged_windows: int = Field(10, ge=1, le=1000, description="Flagged windows listed per model in the report.")

    @model_validator(mode="after")
    def _check_pseudonym_key(self) -> ScoreSettings:
        if self.pseudonymize and self.pseudonym_key is None:
            raise ValueError(
                "pseudonymize is on but NETAE_PSEUDONYM_KEY is not set; "
                "set it to a secret of at least 16 bytes, e.g. `export NETAE_PSEUDONYM_KEY=$(openssl rand -hex 32)`"
            )
        if self.pseudonymize:
            # Fail before any work is done, not when the report is rendered.
            self.pseudonymizer()
        return self

    def pseudonymizer(self) -> Pseudonymizer | None:
        """Return the pseudonymizer when ``pseudonymize`` is on, else None."""
        if not self.pseudonymize:
            return None
        return Pseudonymizer(self.pseudonym_key.get_secret_value())


@dataclass(frozen=True)
class Champion:
    """The model version that scores ad hoc runs for one kind.

    Attributes:
        kind: model kind (``lstm`` or ``conv1d``).
        version: run id that trained it.
        prefix: key prefix of its version folder.
        preprocessing: its ``preprocessing.json`` document.
        threshold: its ``threshold.json`` document (method, value, params).
    """

    kind: str
    version: str
    prefix: str
    preprocessing: dict
    threshold: dict


@dataclass(frozen=True)
class AdhocWindows:
    """The windows of the scored capture under one preprocessing state.

    Attributes:
        windows: the window set written by the windows job.
        rows_key: key of the feature-row metadata (``ROW_FRAME_COLUMNS``) the
            windows were cut from.
    """

    windows: WindowSet
    rows_key: str


def adhoc_prefix(run_id: str) -> str:
    """Return the lake prefix of one score run's packets, windows and scores."""
    return f"lake/adhoc/{run_id}/"


def adhoc_report_prefix(run_id: str) -> str:
    """Return the prefix of one score run's report and exported frames."""
    return f"reports/adhoc/{run_id}/"


@task(name="load-champions", cache_policy=NO_CACHE, **storage_retries(MissingChampionError))
def load_champions(settings: ScoreSettings) -> dict[str, Champion]:
    """Read each kind's champion pointer and the preprocessing and threshold of its version.

    Raises:
        MissingChampionError: when a kind has no champion pointer or its version
            folder lacks ``manifest.json``.
    """
    log = get_run_logger()
    store = settings.open_store()
    champions = {}
    for kind in MODEL_KINDS:
        pointer_key = layout.champion_key(kind)
        if not store.exists(pointer_key):
            raise MissingChampionError(
                f"no {kind} champion at {store.location(pointer_key)}: run `netae retrain` (or `netae demo`) first "
                "so that there are models to score with"
            )
        pointer = store.get_json(pointer_key)
        prefix = pointer.get("prefix") or layout.model_prefix(kind, pointer["version"])
        if not store.exists(prefix + "manifest.json"):
            raise MissingChampionError(
                f"the {kind} champion points at {store.location(prefix)}, which has no manifest.json; "
                "run `netae retrain` to publish a complete version"
            )
        champions[kind] = Champion(
            kind=kind,
            version=pointer["version"],
            prefix=prefix,
            preprocessing=store.get_json(prefix + "preprocessing.json"),
            threshold=store.get_json(prefix + "threshold.json"),
        )
        log.info("Champion %s: version %s, threshold %.6g", kind, pointer["version"], champions[kind].threshold["value"])
    return champions


@task(name="stage-capture", cache_policy=NO_CACHE, **storage_retries(FileNotFoundError))
def stage_capture(settings: ScoreSettings, capture: str, labels: str | None, run_id: str) -> CaptureRef:
    """Resolve the capture and labels locations to store keys, uploading local files.

    A key that exists in the store wins over a local file of the same name. Local
    files go to ``adhoc/captures/<run>/`` under their own names, so an upload never
    replaces a stored capture or labels file.

    Raises:
        FileNotFoundError: when a location is neither a key in the store nor a local file.
    """
    log = get_run_logger()
    store = settings.open_store()
    upload_prefix = f"{ADHOC_CAPTURES_PREFIX}{run_id}/"
    # Both locations are checked before either is uploaded, so a wrong labels path leaves nothing behind.
    found_capture = _locate(store, capture, "capture")
    found_labels = _locate(store, labels, "labels file") if labels is not None else None
    capture_key = _stage(store, found_capture, upload_prefix + PurePosixPath(capture).name, log)
    labels_key = None
    if found_labels is not None:
        labels_key = _stage(store, found_labels, upload_prefix + PurePosixPath(labels).name, log)
    elif store.exists(labels_key_for(capture_key)):
        labels_key = labels_key_for(capture_key)
    log.info("Scoring %s (labels: %s)", store.location(capture_key), store.location(labels_key) if labels_key else "none")
    return CaptureRef(capture_id=capture_id_for_key(capture_key), key=capture_key, labels_key=labels_key)


def _locate(store: ObjectStore, location: str, description: str) -> str | Path:
    """Return ``location`` as a store key when the store has it, or else as a local file path.

    Only a location that is a valid key is looked up, so an absolute path skips the
    store. A ``StorageError`` from the lookup itself (an unreachable endpoint)
    propagates, and the task retries it, instead of reading as a missing file.

    Raises:
        FileNotFoundError: when the location is neither a key in the store nor a local file.
    """
    if _is_key(location) and store.exists(location):
        return location
    path = Path(location).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(f"{description} {location!r} is neither a key in {store.url} nor a local file; check the path")


def _is_key(location: str) -> bool:
    try:
        validate_key(location)
    except StorageError:
        return False
    return True


def _stage(store: ObjectStore, found: str | Path, upload_key: str, log) -> str:
    """Return the store key of a located capture or labels file, uploading a local file to ``upload_key`` first."""
    if isinstance(found, str):
        return found
    store.put_file(upload_key, str(found))
    log.info("Uploaded %s to %s", found, store.location(upload_key))
    return upload_key


@task(name="decode-capture", cache_policy=NO_CACHE)
def decode_capture(settings: ScoreSettings, ref: CaptureRef, run_id: str) -> CaptureStatus:
    """Decode the capture into this run's own packet table with the Spark extraction job.

    Raises:
        CaptureNotDecodedError: when no frame could be read or the labels file is invalid.
    """
    log = get_run_logger()
    store = settings.open_store()
    [status] = extract_packets(spark_for(settings), store, [ref], output_prefix=adhoc_prefix(run_id) + "packets/", run_id=run_id)
    if not status.decoded:
        raise CaptureNotDecodedError(f"cannot score {store.location(ref.key)}: {status.error}")
    log.info("Decoded %s: %d frames%s", ref.key, status.frames, f" (warning: {status.error})" if status.error else "")
    return status


@task(name="cut-windows", cache_policy=NO_CACHE)
def cut_windows(settings: ScoreSettings, status: CaptureStatus, champions: dict[str, Champion], run_id: str) -> dict[str, AdhocWindows]:
    """Cut every window of the capture with each champion's preprocessing state.

    The packets get no split (``UNSPLIT``), so each segment is the whole capture,
    or the whole capture per host in ``host`` window mode, cut in time order as
    in training. Champions that share a preprocessing state share one window
    set. Beside the windows, ``rows.parquet`` keeps the metadata of the feature
    rows (segment keys, frames and times) that maps each window back to frames.

    Returns:
        Model kind -> its windows.
    """
    log = get_run_logger()
    store = settings.open_store()
    spark = spark_for(settings)
    packets = _packets(settings, status, run_id)

    by_state: dict[str, AdhocWindows] = {}
    windows = {}
    for kind, champion in champions.items():
        document = json.dumps(champion.preprocessing, sort_keys=True)
        if document not in by_state:
            state = Preprocessing.from_json(champion.preprocessing)
            prefix = f"{adhoc_prefix(run_id)}windows/{kind}/"
            rows = feature_rows(packets, state.feature_set).cache()
            try:
                window_set = build_windows(spark, packets, state, store, output_prefix=prefix, rows=rows)
                metadata = rows.select(*ROW_FRAME_COLUMNS).toPandas()
            finally:
                rows.unpersist()
            put_frame(store, prefix + "rows.parquet", metadata)
            by_state[document] = AdhocWindows(window_set, prefix + "rows.parquet")
            log.info("Cut %d windows of %d %s rows every %d (%s mode) with the %s preprocessing",
                     sum(window_set.windows_per_capture.values()), state.window_length,
                     feature_set(state.feature_set).row_unit, state.window_stride, state.window_mode, kind)
        windows[kind] = by_state[document]
    return windows


def _packets(settings: ScoreSettings, status: CaptureStatus, run_id: str):
    return read_packet_table(
        spark_for(settings), settings.open_store(), output_prefix=adhoc_prefix(run_id) + "packets/", capture_ids=[status.capture_id]
    )


@task(name="score-windows", task_run_name="score-{kind}", cache_policy=NO_CACHE)
def score_windows(settings: ScoreSettings, kind: str, champion: Champion, adhoc: AdhocWindows, run_id: str) -> str:
    """Score every window with one champion and store the scores; returns their key.

    Stored beside the scores (``<kind>.parquet``: window metadata, ``score``,
    ``flagged``) is ``<kind>.top.json``: the top flagged windows with the mean
    squared error of each feature over the window's steps, largest first.
    """
    log = get_run_logger()
    store = settings.open_store()
    model = model_from_bytes(store.get_bytes(champion.prefix + "model.keras"))
    windows = adhoc.windows
    reader = WindowReader(store, windows.parts, steps=windows.steps, features=windows.features)
    metadata = reader.metadata().assign(host=window_hosts(store, windows.parts))
    scores = reconstruction_errors(model, reader.iter_windows())
    threshold = float(champion.threshold["value"])
    metadata = metadata.assign(score=scores, flagged=scores > threshold)

    flagged_positions = np.flatnonzero(metadata["flagged"].to_numpy())
    top = flagged_positions[np.argsort(-scores[flagged_positions], kind="stable")][: settings.top_flagged_windows]
    errors = feature_errors(model, reader, top)
    top_windows = [
        {
            "position": int(position),
            "features": [[windows.feature_names[index], float(row[index])] for index in np.argsort(-row, kind="stable")[:TOP_FEATURES]],
        }
        for position, row in zip(top.tolist(), errors)
    ]

    key = f"{adhoc_prefix(run_id)}scores/{kind}.parquet"
    put_frame(store, key, metadata)
    store.put_json(f"{adhoc_prefix(run_id)}scores/{kind}.top.json", top_windows)
    log.info("%s: %d of %d windows above the threshold %.6g", kind, len(flagged_positions), len(metadata), threshold)
    return key


@task(name="derive-frame-and-host-scores", cache_policy=NO_CACHE)
def derive_scores(settings: ScoreSettings, status: CaptureStatus, champions: dict[str, Champion],
                  windows: dict[str, AdhocWindows], score_keys: dict[str, str], run_id: str) -> dict[str, str]:
    """Derive each model's frame and host scores from its window scores and store them; returns the host tables' keys.

    The rule is that of ``models.derived_scores``: a frame scores the largest
    score of the windows that contain it, and a host the largest score of the
    frames it sent or received. Beside ``<kind>.parquet`` go ``<kind>.frames.parquet``
    (``frame_number``, ``score``, ``flagged``) and ``<kind>.hosts.parquet``
    (``address``, ``score``, ``frames``, ``flagged_frames``, ``top_frame``,
    ``flagged``), highest score first and ties by flagged frames. Addresses are
    stored as decoded, because ``--pseudonymize`` applies to the report only.
    """
    log = get_run_logger()
    store = settings.open_store()
    # NOTE: every frame's addresses are collected in the driver's Python process, as the row metadata is in ``cut_windows``.
    # This step peaked at about 1.4 GiB for 4 million frames (docs/benchmarks.md), so far larger captures need the join in Spark.
    addresses = _packets(settings, status, run_id).select("frame_number", "src_addr", "dst_addr").toPandas()
    mappings = _window_frames(store, champions, windows)
    host_keys = {}
    for kind, key in score_keys.items():
        threshold = float(champions[kind].threshold["value"])
        frames = mappings[kind].frame_scores(get_frame(store, key))
        frames = frames.assign(flagged=frames["score"].to_numpy() > threshold)
        hosts = host_scores(frames, addresses, threshold)

        stem = key.removesuffix(".parquet")
        put_frame(store, stem + ".frames.parquet", frames)
        put_frame(store, stem + ".hosts.parquet", hosts)
        host_keys[kind] = stem + ".hosts.parquet"
        log.info("%s: %d of %d scored frames and %d of %d hosts above the threshold %.6g", kind,
                 int(frames["flagged"].sum()), len(frames), int(hosts["flagged"].sum()), len(hosts), threshold)
    return host_keys


@task(name="render-score-report", cache_policy=NO_CACHE)
def write_score_report(
    settings: ScoreSettings, ref: CaptureRef, status: CaptureStatus, champions: dict[str, Champion],
    windows: dict[str, AdhocWindows], score_keys: dict[str, str], host_keys: dict[str, str], run_id: str,
) -> dict:
    """Render the report, export the flagged frames, and store both.

    Returns:
        Summary of the run: report and export keys, display filter, flagged
        windows and frames per model, the top flagged windows, and per model
        the ``TOP_HOSTS_SUMMARY`` highest-scoring hosts.
    """
    log = get_run_logger()
    store = settings.open_store()
    spark_packets = _packets(settings, status, run_id)
    # NOTE: the traffic plots and host summaries use the first REPORT_PACKET_ROWS frames only, to bound driver memory.
    packets = spark_packets.where(F.col("frame_number") <= REPORT_PACKET_ROWS).select(*FRAME_COLUMNS).toPandas()

    scores = {kind: get_frame(store, key) for kind, key in score_keys.items()}
    tops = {kind: store.get_json(key.removesuffix(".parquet") + ".top.json") for kind, key in score_keys.items()}
    hosts = {kind: get_frame(store, key) for kind, key in host_keys.items()}
    thresholds = {kind: float(champions[kind].threshold["value"]) for kind in champions}
    mappings = _window_frames(store, champions, windows)

    flagged_windows = _flagged_windows(tops, scores, thresholds, mappings)
    listed = sorted({number for window in flagged_windows for number in window.frame_numbers})
    notes = []
    length = min(mapping.length for mapping in mappings.values())
    if not any(len(table) for table in scores.values()):
        listed = list(range(1, min(status.frames, UNWINDOWED_FRAMES_SHOWN) + 1))
        notes.append(f"The capture has {status.frames} frames, too few for one window of {length} rows, so no window was scored. "
                     f"Its first {len(listed)} frames are listed below.")
    frames = spark_packets.where(F.col("frame_number").isin(listed)).select(*FRAME_COLUMNS).toPandas()

    for kind, table in sorted(scores.items()):
        note = alarm_rate_note(kind, table["flagged"].to_numpy(bool), Threshold.from_json(champions[kind].threshold))
        if note is not None:
            log.warning(note)
            notes.append(note)

    comments: dict[int, list[str]] = {}
    for kind, table in sorted(scores.items()):
        for number, text in frame_comments(kind, table[table["flagged"]], mappings[kind], thresholds[kind]).items():
            comments.setdefault(number, []).append(text)

    # tshark and the frame reader need a file, and the store may be S3.
    report_prefix = adhoc_report_prefix(run_id)
    with tempfile.TemporaryDirectory(prefix="netae-score-") as folder:
        local_capture = _download(store, ref.key, folder)
        frame_info = _info_or_note(local_capture, listed, notes, log)
        export_key, exported = _export(store, local_capture, ref.key, comments, report_prefix, notes, log)

    inputs = ScoreReportInputs(
        title=f"netae score: {PurePosixPath(ref.key).name}",
        run_id=run_id,
        created_utc=datetime.now(timezone.utc),
        capture_key=ref.key,
        capture_frames=status.frames,
        window_length=length,
        window_stride=min(mapping.stride for mapping in mappings.values()),
        row_unit=feature_set(Preprocessing.from_json(next(iter(champions.values())).preprocessing).feature_set).row_unit,
        packets=packets,
        models=[_model_section(champions[kind], scores[kind]) for kind in scores],
        flagged=flagged_windows,
        frames=frames,
        frame_info=frame_info,
        display_filter=display_filter(comments) if comments else None,
        export_location=store.location(export_key) if export_key else None,
        exported_frames=exported,
        flagged_frame_numbers=sorted(comments),
        host_scores=dict(sorted(hosts.items())),
        notes=notes,
        links={
            **{f"{kind} champion": store.location(champion.prefix) for kind, champion in champions.items()},
            "capture": store.location(ref.key),
            "scores": store.location(adhoc_prefix(run_id) + "scores/"),
        },
    )
    pseudonymizer = settings.pseudonymizer()
    if pseudonymizer is not None:
        inputs = pseudonymize_inputs(inputs, pseudonymizer)
    report_key = report_prefix + "report.html"
    store.put_bytes(report_key, render_score_report(inputs).encode("utf-8"), content_type="text/html; charset=utf-8")
    log.info("Score report written to %s", store.location(report_key))

    return {
        "run_id": run_id,
        "capture": ref.key,
        "frames": status.frames,
        "report": report_key,
        "export": export_key,
        "exported_frames": exported,
        "display_filter": inputs.display_filter,
        "thresholds": thresholds,
        "metrics": {section.kind: section.metrics for section in inputs.models},
        "windows": {kind: int(len(table)) for kind, table in scores.items()},
        "flagged_windows": {kind: int(table["flagged"].sum()) for kind, table in scores.items()},
        "top_flagged": [_top_row(window, inputs, pseudonymizer) for window in flagged_windows],
        "top_hosts": {kind: _top_hosts(table) for kind, table in inputs.host_scores.items()},
    }


def _window_frames(store: ObjectStore, champions: dict[str, Champion], windows: dict[str, AdhocWindows]) -> dict[str, WindowFrames]:
    """Map each model's windows back to frames, reading each shared window set's row metadata once."""
    by_key: dict[str, WindowFrames] = {}
    for kind, item in windows.items():
        if item.rows_key not in by_key:
            by_key[item.rows_key] = WindowFrames(get_frame(store, item.rows_key), Preprocessing.from_json(champions[kind].preprocessing))
    return {kind: by_key[item.rows_key] for kind, item in windows.items()}


def _flagged_windows(tops: dict[str, list], scores: dict[str, pd.DataFrame], thresholds: dict[str, float], mappings: dict[str, WindowFrames]) -> list[FlaggedWindow]:
    """Build the report's flagged windows from each model's ``top.json`` entries."""
    flagged = []
    for kind, top in tops.items():
        for item in top:
            row = scores[kind].iloc[item["position"]]
            host = row["host"] if isinstance(row["host"], str) else None
            flagged.append(
                FlaggedWindow(
                    kind=kind,
                    window_index=int(row["window_index"]),
                    score=float(row["score"]),
                    threshold=thresholds[kind],
                    start_ns=int(row["start_ns"]),
                    end_ns=int(row["end_ns"]),
                    frame_numbers=mappings[kind].frames(int(row["window_index"]), host),
                    top_features=[(name, value) for name, value in item["features"]],
                )
            )
    return flagged


def _download(store: ObjectStore, key: str, folder: str) -> str:
    path = os.path.join(folder, PurePosixPath(key).name)
    with store.open_read(key) as source, open(path, "wb") as target:
        while block := source.read(4 * 1024 * 1024):
            target.write(block)
    return path


def _info_or_note(path: str, frame_numbers: list[int], notes: list[str], log) -> dict[int, str]:
    if not frame_numbers:
        return {}
    try:
        return wireshark_info(path, [int(number) for number in frame_numbers], timeout_s=TSHARK_TIMEOUT_S)
    except (OSError, RuntimeError) as error:
        log.warning("No Wireshark Info column for the report: %s", error)
        notes.append(f"Wireshark's Info column is missing because tshark failed: {error}")
        return {}


def _export(store: ObjectStore, local_capture: str, key: str, comments: dict[int, list[str]], prefix: str, notes: list[str], log) -> tuple[str | None, int]:
    if not comments:
        return None, 0
    export_key = prefix + "flagged.pcapng"
    buffer = io.BytesIO()
    try:
        exported = write_pcapng(read_frames(local_capture, comments, name=key), comments, buffer)
    except CaptureError as error:
        log.warning("Flagged frames not exported: %s", error)
        notes.append(f"The flagged frames could not be exported as pcapng: {error}")
        return None, 0
    store.put_bytes(export_key, buffer.getvalue())
    log.info("Exported %d flagged frames to %s", exported, store.location(export_key))
    return export_key, exported


def alarm_rate_note(kind: str, flagged: np.ndarray, threshold: Threshold) -> str | None:
    """Return a note when a model flags more than ``PROMISE_TOLERANCE`` times the share its threshold promises.

    Without labels the flagged share is the only rate known. On benign traffic
    like the calibration period it stays near or below the promise, and often
    far below Cantelli's bound, the promise of ``mean_k_std``. A share above
    the tolerance therefore points to anomalies or to benign traffic that
    changed since training. Returns None for a share within that, or for no windows.
    """
    if flagged.size == 0:
        return None
    promised = threshold_promise(threshold)
    share = flagged_share(flagged)
    if keeps_promise(share, promised):
        return None
    return (
        f"The {kind} model flagged {int(flagged.sum())} of {flagged.size} windows ({share:.1%}), more than "
        f"{PROMISE_TOLERANCE:g} times the "
        f"{promised:.1%} false-alarm rate its {threshold.method} threshold promises on benign traffic like its "
        "calibration windows. Either the capture holds anomalies, or its benign traffic differs from the training "
        "period. If the flagged frames are benign, retrain on recent traffic."
    )


def _model_section(champion: Champion, scores: pd.DataFrame) -> ModelSection:
    flagged = scores["flagged"].to_numpy(bool)
    labelled = len(scores) > 0 and scores["label"].notna().all()
    metrics: dict[str, float] = {"flagged_share": flagged_share(flagged)}
    confusion = None
    if labelled:
        labels = scores["label"].to_numpy(np.int64)
        outcome = binary_metrics(labels, flagged)
        confusion = outcome.get("confusion")
        metrics.update({name: value for name, value in outcome.items() if name in ("accuracy", "precision", "recall", "f1")})
    return ModelSection(
        kind=champion.kind,
        version=champion.version,
        threshold=float(champion.threshold["value"]),
        threshold_method=champion.threshold["method"],
        threshold_params=champion.threshold.get("params", {}),
        window_start_ns=scores["start_ns"].to_numpy(np.int64),
        window_scores=scores["score"].to_numpy(np.float64),
        window_labels=scores["label"].to_numpy(np.int64) if labelled else None,
        metrics=metrics,
        confusion=confusion,
        training_history=None,
    )


def _top_row(window: FlaggedWindow, inputs: ScoreReportInputs, pseudonymizer: Pseudonymizer | None) -> dict:
    members = inputs.frames[inputs.frames["frame_number"].isin(window.frame_numbers)]
    hosts = sorted(set(members["src_addr"].dropna().astype(str)) | set(members["dst_addr"].dropna().astype(str)))
    return {
        "model": window.kind,
        "window": window.window_index,
        "score": round(window.score, 8),
        "threshold": round(window.threshold, 8),
        "start_utc": pd.Timestamp(window.start_ns, unit="ns", tz="UTC").isoformat(),
        "frames": f"{min(window.frame_numbers)}-{max(window.frame_numbers)}" if window.frame_numbers else "",
        "hosts": ", ".join(hosts[:5]),
        "features": ", ".join(name for name, _ in window.top_features),
    }


def describe_hosts(hosts: list[dict]) -> str:
    """Return the run summary's highest-scoring hosts of one model as one line.

    Each host reads like ``10.0.0.5 (0.0421 at frame 77, 310 of 412 frames flagged)``.
    """
    return ", ".join(
        f"{host['address']} ({host['score']:.6g} at frame {host['top_frame']}, {host['flagged_frames']} of {host['frames']} frames flagged)"
        for host in hosts
    )


def _top_hosts(table: pd.DataFrame) -> list[dict]:
    return [
        {"address": str(row.address), "score": round(float(row.score), 8), "frames": int(row.frames),
         "flagged_frames": int(row.flagged_frames), "top_frame": int(row.top_frame)}
        for row in table.head(TOP_HOSTS_SUMMARY).itertuples(index=False)
    ]


@task(name="publish-score-artifacts", cache_policy=NO_CACHE)
def publish_score_artifacts(settings: ScoreSettings, summary: dict) -> None:
    """Publish the run summary as a Prefect markdown artifact and the top flagged windows as a table artifact."""
    store = settings.open_store()
    export_location = store.location(summary["export"]) if summary["export"] else None
    markdown = score_markdown(summary, store.location(summary["report"]), export_location)
    create_markdown_artifact(markdown=markdown, key="netae-score", description=f"netae score {summary['run_id']}")
    create_table_artifact(
        table=summary["top_flagged"] or [{"model": "none", "window": "no window was flagged"}],
        key="netae-score-flagged",
        description="Top flagged windows of the score run",
    )


def score_markdown(summary: dict, report_location: str, export_location: str | None) -> str:
    """Return the markdown summary of a score run: metrics per model, report, export and display filter.

    Precision, recall and F1 (anomaly class) show only where the capture had labels.
    """
    lines = [
        f"# netae score {summary['run_id']}",
        "",
        f"Capture `{summary['capture']}`, {summary['frames']} frames.",
        "",
        "| model | windows | flagged | threshold (MSE) | precision | recall | F1 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, windows in summary["windows"].items():
        metrics = summary["metrics"].get(kind, {})
        cells = [f"{metrics[name]:.3f}" if name in metrics else "n/a" for name in ("precision", "recall", "f1")]
        lines.append(f"| {kind} | {windows} | {summary['flagged_windows'][kind]} | {summary['thresholds'][kind]:.6g} | {' | '.join(cells)} |")
    for kind, hosts in summary["top_hosts"].items():
        if hosts:
            lines += ["", f"Highest-scoring {kind} hosts: {describe_hosts(hosts)}"]
    lines += ["", f"Report: `{report_location}`"]
    if export_location is not None:
        lines += ["", f"Flagged frames ({summary['exported_frames']}): `{export_location}`"]
    if summary["display_filter"]:
        lines += ["", f"Display filter: `{summary['display_filter']}`"]
    return "\n".join(lines)


@flow(name="score", log_prints=False)
def score(capture: str, labels: str | None = None, settings: ScoreSettings | None = None, run_id: str | None = None) -> dict:
    """Score one capture with the champion models and publish the analyst report.

    Args:
        capture: a key in the store, or a local file that is uploaded first.
        labels: optional labels CSV (key or local file) with
            ``first_frame,last_frame,label,attack`` rows; without it, a
            ``.labels.csv`` beside the capture key is used where one exists.
        settings: run settings; read from ``NETAE_*`` variables when omitted.
        run_id: id of this run; a new time-based id when omitted.

    Returns:
        The run summary (see ``write_score_report``).

    Raises:
        MissingChampionError: when a model kind has no champion yet.
        FileNotFoundError: when ``capture`` or ``labels`` cannot be found.
        CaptureNotDecodedError: when the capture cannot be decoded.
    """
    settings = settings or ScoreSettings()
    run_id = run_id or layout.new_run_id()
    log = get_run_logger()
    log.info("Score run %s: storage %s, capture %s", run_id, settings.open_store().url, capture)

    champions = load_champions(settings)
    ref = stage_capture(settings, capture, labels, run_id)
    status = decode_capture(settings, ref, run_id)
    windows = cut_windows(settings, status, champions, run_id)
    score_keys = {kind: score_windows(settings, kind, champions[kind], windows[kind], run_id) for kind in champions}
    host_keys = derive_scores(settings, status, champions, windows, score_keys, run_id)
    summary = write_score_report(settings, ref, status, champions, windows, score_keys, host_keys, run_id)
    publish_score_artifacts(settings, summary)

    log.info("Score run %s complete; report at %s", run_id, settings.open_store().location(summary["report"]))
    return summary
