"""Spark job: decode captures into the packet table, one partition per capture.

Executors open the capture bytes from object storage themselves and write the
Parquet parts straight back to it, so capture data never passes through the
driver. The driver only collects one status row per task.

Layout of the table under ``output_prefix``::

    capture_id=<id>/part-<run_id>-<chunk>-<n>.parquet
    capture_id=<id>/_manifest.json      # the parts that make up the partition

A reader takes the parts from ``_manifest.json``, which is written after every
part, so it never sees half a partition. Decoding the same capture again writes new
parts, replaces the manifest, then deletes the parts of earlier runs: the
partition is replaced, not duplicated. When a capture cannot be decoded at all,
its earlier partition stays untouched.

Run alone::

    spark-submit spark_jobs/extract_packets.py --storage-url file://./netae-data \\
        --capture captures/demo.pcapng --output-prefix lake/packets/ --run-id manual
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import traceback
from dataclasses import asdict, dataclass, field
from typing import BinaryIO, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from objectstore import ObjectStore, StorageError, open_store
from spark_jobs.captures import CaptureRef, capture_ref_for_key
from spark_jobs.chunking import (
    PCAP_HEADER_BYTES,
    PcapLayout,
    PrefixedRange,
    pcap_layout,
    plan_nominal_chunks,
    walk_chunk,
)
from spark_jobs.decoder import CaptureDecoder
from spark_jobs.labels import LabelsError, label_packets, parse_labels
from spark_jobs.packet_schema import PACKET_SCHEMA

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
DEFAULT_PART_FRAMES = 1_000_000
DEFAULT_CHUNK_BYTES = 256 << 20

_STATUS_SCHEMA = pa.schema(
    [
        pa.field("status_json", pa.string(), nullable=False),
    ]
)


@dataclass
class CaptureStatus:
    """Outcome of decoding one capture.

    ``decoded`` is False when the capture was set aside: no frame could be read,
    or its labels file is invalid. ``error`` then gives the reason. A capture can
    also be decoded with an error, when a damaged record stopped decoding after
    some frames; those frames are kept. ``fatal`` marks errors that set the
    capture aside even when frames came out: an invalid labels file, or an
    unexpected decoder failure.
    """

    capture_id: str
    key: str
    decoded: bool
    frames: int = 0
    format: str | None = None
    truncated: bool = False
    malformed_frames: int = 0
    snaplen_cut_frames: int = 0
    unsupported_link_types: dict[str, int] = field(default_factory=dict)
    labelled: bool = False
    error: str | None = None
    parts: list[str] = field(default_factory=list)
    fatal: bool = False


def partition_prefix(output_prefix: str, capture_id: str) -> str:
    """Return the key prefix of one capture's partition."""
    return f"{output_prefix}capture_id={capture_id}/"


def _read_labels(store: ObjectStore, labels_key: str | None):
    if labels_key is None:
        return None
    try:
        data = store.get_bytes(labels_key)
    except StorageError as error:
        raise LabelsError(f"cannot read labels file {labels_key!r}: {error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LabelsError(f"{store.location(labels_key)}: not UTF-8 text at byte {error.start}") from None
    return parse_labels(text, source=store.location(labels_key))


def _with_labels(batch: pa.RecordBatch, ranges) -> pa.RecordBatch:
    if ranges is None:
        return batch
    labels = label_packets(
        batch.column("frame_number").to_numpy(),
        batch.column("timestamp_ns").to_numpy(),
        batch.column("src_addr").to_numpy(zero_copy_only=False),
        batch.column("dst_addr").to_numpy(zero_copy_only=False),
        ranges,
    )
    labels = pa.array(labels, type=pa.int8())
    index = PACKET_SCHEMA.get_field_index("label")
    return batch.set_column(index, PACKET_SCHEMA.field("label"), labels)


def _write_part(store: ObjectStore, key: str, batches: list[pa.RecordBatch]) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_batches(batches, schema=PACKET_SCHEMA), buffer, compression="zstd")
    store.put_bytes(key, buffer.getvalue())


@dataclass(frozen=True)
class DecodeTask:
    """One Spark task's share of a capture: the whole file, or one byte range of a classic pcap.

    ``chunk_index`` is -1 for a whole capture. A chunk covers the records in
    [``start``, ``end``) and numbers them from ``first_frame``.
    ``previous_timestamp_ns`` is the time of the frame before the chunk, so
    inter-arrival times continue. ``header`` is the file's 24-byte pcap header.
    """

    capture_id: str
    key: str
    labels_key: str | None
    chunk_index: int = -1
    start: int = 0
    end: int = 0
    first_frame: int = 1
    previous_timestamp_ns: int | None = None
    header: bytes = b""


def _open_task_stream(store: ObjectStore, task: DecodeTask) -> BinaryIO:
    if task.chunk_index < 0:
        return store.open_read(task.key)
    body = store.open_range(task.key, task.start, task.end - task.start)
    return io.BufferedReader(PrefixedRange(task.header, body), 1 << 20)  # type: ignore[return-value]


def decode_task(
    store: ObjectStore, task: DecodeTask, *, output_prefix: str, run_id: str, part_frames: int = DEFAULT_PART_FRAMES
) -> CaptureStatus:
    """Decode one task's frames into Parquet parts and return what it found.

    Never raises for bad input: an unreadable capture or labels file, or an
    unexpected decoder failure, comes back in ``error``, with ``decoded`` False
    when no usable frame came out, so the rest of a batch goes on.
    """
    status = CaptureStatus(capture_id=task.capture_id, key=task.key, decoded=False)
    prefix = partition_prefix(output_prefix, task.capture_id)
    chunk = max(task.chunk_index, 0)
    written: list[str] = []
    fatal = False
    try:
        ranges = _read_labels(store, task.labels_key)
        status.labelled = ranges is not None

        pending: list[pa.RecordBatch] = []
        pending_frames = 0
        with _open_task_stream(store, task) as stream:
            decoder = CaptureDecoder(
                stream,
                capture_id=task.capture_id,
                name=task.key,
                first_frame_number=task.first_frame,
                previous_timestamp_ns=task.previous_timestamp_ns,
            )
            for batch in decoder.batches():
                pending.append(_with_labels(batch, ranges))
                pending_frames += batch.num_rows
                if pending_frames >= part_frames:
                    written.append(f"{prefix}part-{run_id}-{chunk:05d}-{len(written):03d}.parquet")
                    _write_part(store, written[-1], pending)
                    pending, pending_frames = [], 0
            if pending:
                written.append(f"{prefix}part-{run_id}-{chunk:05d}-{len(written):03d}.parquet")
                _write_part(store, written[-1], pending)

        summary = decoder.summary
        status.frames = summary.frames
        status.format = summary.format
        status.truncated = summary.truncated
        status.malformed_frames = summary.malformed_frames
        status.snaplen_cut_frames = summary.snaplen_cut_frames
        status.unsupported_link_types = {str(k): v for k, v in summary.unsupported_link_types.items()}
        if summary.error is not None:
            status.error = str(summary.error)
    except LabelsError as error:
        status.error = f"invalid labels file: {error}"
        fatal = True
    except Exception as error:  # noqa: BLE001 - one capture must never stop the batch
        status.error = f"decoding {task.key} failed unexpectedly: {type(error).__name__}: {error}"
        logger.error("Decoding %s failed:\n%s", task.key, traceback.format_exc())
        fatal = True

    status.fatal = fatal
    status.decoded = status.frames > 0 and not fatal
    status.parts = written
    return status


def merge_task_statuses(ref: CaptureRef, results: list[CaptureStatus]) -> CaptureStatus:
    """Combine the statuses of a capture's tasks, given in chunk order, into the capture's status."""
    merged = CaptureStatus(capture_id=ref.capture_id, key=ref.key, decoded=False)
    for result in results:
        merged.frames += result.frames
        merged.format = merged.format or result.format
        merged.truncated = merged.truncated or result.truncated
        merged.malformed_frames += result.malformed_frames
        merged.snaplen_cut_frames += result.snaplen_cut_frames
        merged.labelled = merged.labelled or result.labelled
        for link_type, frames in result.unsupported_link_types.items():
            merged.unsupported_link_types[link_type] = merged.unsupported_link_types.get(link_type, 0) + frames
        merged.error = merged.error or result.error
        merged.fatal = merged.fatal or result.fatal
        merged.parts.extend(result.parts)
    merged.decoded = merged.frames > 0 and not merged.fatal
    if merged.frames == 0 and merged.error is None:
        merged.error = f"{ref.key}: the capture holds no packets"
    return merged


def publish_partition(store: ObjectStore, status: CaptureStatus, *, output_prefix: str, run_id: str) -> None:
    """Make a decoded capture's new parts its partition, or drop them when it was set aside.

    The manifest is written after every part, and the parts of earlier runs are
    deleted after the manifest, so readers never see half a partition. A capture
    set aside leaves its earlier partition as it was.
    """
    prefix = partition_prefix(output_prefix, status.capture_id)
    if not status.decoded:
        for key in status.parts:
            store.delete(key)
        status.parts = []
        return
    manifest = {"run_id": run_id, "capture_id": status.capture_id, "source_key": status.key}
    manifest.update({name: value for name, value in asdict(status).items() if name not in manifest})
    store.put_json(prefix + MANIFEST_NAME, manifest)
    for info in store.list(prefix):
        if info.key.endswith(".parquet") and info.key not in status.parts:
            store.delete(info.key)


def decode_capture(
    store: ObjectStore, ref: CaptureRef, *, output_prefix: str, run_id: str, part_frames: int = DEFAULT_PART_FRAMES
) -> CaptureStatus:
    """Decode one whole capture in this process, publish its partition and return its status."""
    task = DecodeTask(ref.capture_id, ref.key, ref.labels_key)
    result = decode_task(store, task, output_prefix=output_prefix, run_id=run_id, part_frames=part_frames)
    status = merge_task_statuses(ref, [result])
    publish_partition(store, status, output_prefix=output_prefix, run_id=run_id)
    return status


def _collect_json(frame: DataFrame, function) -> list[dict]:
    return [json.loads(row.status_json) for row in frame.mapInArrow(function, from_arrow_schema(_STATUS_SCHEMA)).collect()]


def _status_batch(document: dict) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"status_json": json.dumps(document)}], schema=_STATUS_SCHEMA)


def _plan_tasks(spark: SparkSession, store: ObjectStore, captures: list[CaptureRef], chunk_bytes: int) -> list[DecodeTask]:
    """Plan one task per capture, or one per chunk for large classic pcaps whose chunk walk agrees."""
    tasks: list[DecodeTask] = []
    walks: list[dict] = []
    layouts: dict[str, PcapLayout] = {}
    for ref in captures:
        info = store.stat(ref.key)
        layout = None
        if info is not None and info.size_bytes > chunk_bytes:
            with store.open_range(ref.key, 0, PCAP_HEADER_BYTES) as stream:
                layout = pcap_layout(stream.read(PCAP_HEADER_BYTES))
        if layout is None:
            tasks.append(DecodeTask(ref.capture_id, ref.key, ref.labels_key))
            continue
        layouts[ref.capture_id] = layout
        for index, (start, end) in enumerate(plan_nominal_chunks(info.size_bytes, chunk_bytes)):
            walks.append({"capture_id": ref.capture_id, "key": ref.key, "index": index, "start": start, "end": end,
                          "size": info.size_bytes})
    if not walks:
        return tasks

    def walk_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row in batch.to_pylist():
                boundary = walk_chunk(
                    store, row["key"], layouts[row["capture_id"]], index=row["index"],
                    nominal_start=row["start"], nominal_end=row["end"], size_bytes=row["size"],
                )
                yield _status_batch({"capture_id": row["capture_id"], **asdict(boundary)})

    walk_frame = spark.createDataFrame([(json.dumps(walk),) for walk in walks], "walk_json string").repartition(len(walks))
    walk_frame = walk_frame.selectExpr(
        "get_json_object(walk_json, '$.capture_id') as capture_id", "get_json_object(walk_json, '$.key') as key",
        "cast(get_json_object(walk_json, '$.index') as int) as index",
        "cast(get_json_object(walk_json, '$.start') as bigint) as start",
        "cast(get_json_object(walk_json, '$.end') as bigint) as end",
        "cast(get_json_object(walk_json, '$.size') as bigint) as size",
    )
    boundaries: dict[str, list[dict]] = {}
    for document in _collect_json(walk_frame, walk_partition):
        boundaries.setdefault(document["capture_id"], []).append(document)

    for ref in captures:
        if ref.capture_id not in layouts:
            continue
        chunks = sorted(boundaries.get(ref.capture_id, []), key=lambda item: item["index"])
        consistent = all(chunk["ok"] for chunk in chunks) and all(
            later["start"] == earlier["end"] for earlier, later in zip(chunks, chunks[1:])
        )
        if not consistent:
            logger.warning("Chunk plan of %s is inconsistent; decoding it in one task", ref.key)
            tasks.append(DecodeTask(ref.capture_id, ref.key, ref.labels_key))
            continue
        first_frame, previous_ns = 1, None
        for chunk in chunks:
            tasks.append(DecodeTask(ref.capture_id, ref.key, ref.labels_key, chunk["index"], chunk["start"], chunk["end"],
                                    first_frame, previous_ns, layouts[ref.capture_id].header))
            first_frame += chunk["frames"]
            if chunk["last_timestamp_ns"] is not None:
                previous_ns = chunk["last_timestamp_ns"]
    return tasks


def extract_packets(
    spark: SparkSession,
    store: ObjectStore,
    captures: list[CaptureRef],
    *,
    output_prefix: str,
    run_id: str,
    part_frames: int = DEFAULT_PART_FRAMES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> list[CaptureStatus]:
    """Decode ``captures`` on the executors and publish one partition per decoded capture.

    Each capture is one Spark task, except classic pcaps larger than
    ``chunk_bytes``, which are split into byte ranges decoded in parallel (see
    ``spark_jobs.chunking``). The driver reads only the 24-byte header of large
    captures and collects one small status per task.

    Returns:
        One status per capture, in the order given.
    """
    if not captures:
        return []
    tasks = _plan_tasks(spark, store, captures, chunk_bytes)
    rows = [(json.dumps({**asdict(task), "header": task.header.hex()}),) for task in tasks]
    frame = spark.createDataFrame(rows, "task_json string").repartition(len(rows))

    def decode_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for document in batch.column("task_json").to_pylist():
                fields = json.loads(document)
                task = DecodeTask(**{**fields, "header": bytes.fromhex(fields["header"])})
                status = decode_task(store, task, output_prefix=output_prefix, run_id=run_id, part_frames=part_frames)
                yield _status_batch({"chunk_index": task.chunk_index, **asdict(status)})

    results: dict[str, list[dict]] = {}
    for document in _collect_json(frame, decode_partition):
        results.setdefault(document["capture_id"], []).append(document)

    statuses = []
    for ref in captures:
        documents = sorted(results.get(ref.capture_id, []), key=lambda item: item["chunk_index"])
        task_statuses = [CaptureStatus(**{k: v for k, v in document.items() if k != "chunk_index"}) for document in documents]
        status = merge_task_statuses(ref, task_statuses)
        publish_partition(store, status, output_prefix=output_prefix, run_id=run_id)
        statuses.append(status)
    return statuses


def list_partition_parts(store: ObjectStore, output_prefix: str, capture_ids: list[str]) -> list[str]:
    """Return the Parquet part keys that the manifests of ``capture_ids`` name."""
    parts: list[str] = []
    for capture_id in capture_ids:
        manifest_key = partition_prefix(output_prefix, capture_id) + MANIFEST_NAME
        if store.exists(manifest_key):
            parts.extend(store.get_json(manifest_key)["parts"])
    return parts


def read_packet_table(
    spark: SparkSession, store: ObjectStore, *, output_prefix: str, capture_ids: list[str]
) -> DataFrame:
    """Load the packet table of ``capture_ids`` as a Spark DataFrame.

    Executors read the Parquet parts through ``store``, so this works the same for
    ``file://`` and ``s3://`` storage.
    """
    parts = list_partition_parts(store, output_prefix, capture_ids)
    spark_schema = from_arrow_schema(PACKET_SCHEMA)
    if not parts:
        return spark.createDataFrame([], spark_schema)
    keys = spark.createDataFrame([(key,) for key in parts], "key string").repartition(len(parts))

    def read_parts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for key in batch.column("key").to_pylist():
                with store.open_read(key) as stream:
                    parquet = pq.ParquetFile(io.BytesIO(stream.read()))
                    yield from parquet.iter_batches(batch_size=65_536)

    return keys.mapInArrow(read_parts, spark_schema)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry for ``spark-submit``."""
    parser = argparse.ArgumentParser(description="Decode captures into netae's packet table.")
    parser.add_argument("--storage-url", required=True, help="file://FOLDER or s3://BUCKET[/PREFIX]")
    parser.add_argument("--s3-endpoint", default=None, help="host:port of the S3 server (keys from NETAE_S3_*)")
    parser.add_argument("--capture", action="append", required=True, help="capture key; repeat for several")
    parser.add_argument("--output-prefix", default="lake/packets/", help="key prefix of the packet table")
    parser.add_argument("--run-id", default="manual", help="run id recorded in part names and manifests")
    args = parser.parse_args(argv)

    store = open_store(
        args.storage_url,
        s3_endpoint=args.s3_endpoint,
        s3_access_key=os.environ.get("NETAE_S3_ACCESS_KEY"),
        s3_secret_key=os.environ.get("NETAE_S3_SECRET_KEY"),
    )
    spark = SparkSession.builder.appName("netae-extract-packets").getOrCreate()
    statuses = extract_packets(
        spark, store, [capture_ref_for_key(store, key) for key in args.capture],
        output_prefix=args.output_prefix, run_id=args.run_id,
    )
    for status in statuses:
        print(json.dumps(asdict(status)))
    return 0 if all(status.decoded for status in statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main())
