"""Spark job: decode captures into the packet table, one partition per capture.

Executors open the capture bytes from object storage themselves and write the
Parquet parts straight back to it, so capture data never passes through the
driver; the driver only collects one status row per capture.

Layout of the table under ``output_prefix``::

    capture_id=<id>/part-<run_id>-00000.parquet
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
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from objectstore import ObjectStore, open_store
from spark_jobs.captures import CaptureRef, capture_ref_for_key
from spark_jobs.decoder import CaptureDecoder
from spark_jobs.labels import LabelsError, label_frames, parse_labels
from spark_jobs.packet_schema import PACKET_SCHEMA

logger = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
DEFAULT_PART_FRAMES = 1_000_000

_STATUS_SCHEMA = pa.schema(
    [
        pa.field("status_json", pa.string(), nullable=False),
    ]
)


@dataclass
class CaptureStatus:
    """What decoding one capture produced.

    ``decoded`` is False when the capture was set aside: no frame could be read,
    or its labels file is invalid. ``error`` then gives the reason. A capture can
    also be decoded with an error, when a damaged record stopped decoding after
    some frames; those frames are kept.
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


def partition_prefix(output_prefix: str, capture_id: str) -> str:
    """Return the key prefix of one capture's partition."""
    return f"{output_prefix}capture_id={capture_id}/"


def _read_labels(store: ObjectStore, labels_key: str | None):
    if labels_key is None:
        return None
    return parse_labels(store.get_bytes(labels_key).decode("utf-8"), source=store.location(labels_key))


def _with_labels(batch: pa.RecordBatch, ranges) -> pa.RecordBatch:
    if ranges is None:
        return batch
    frame_numbers = batch.column("frame_number").to_numpy()
    labels = pa.array(label_frames(frame_numbers, ranges), type=pa.int8())
    index = PACKET_SCHEMA.get_field_index("label")
    return batch.set_column(index, PACKET_SCHEMA.field("label"), labels)


def _write_part(store: ObjectStore, key: str, batches: list[pa.RecordBatch]) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_batches(batches, schema=PACKET_SCHEMA), buffer, compression="zstd")
    store.put_bytes(key, buffer.getvalue())


def decode_capture(
    store: ObjectStore,
    ref: CaptureRef,
    *,
    output_prefix: str,
    run_id: str,
    part_frames: int = DEFAULT_PART_FRAMES,
) -> CaptureStatus:
    """Decode one capture into its partition of the packet table and return its status.

    Never raises for bad input: an unreadable capture or labels file, or an
    unexpected decoder failure, comes back as a status with ``decoded`` False and
    the reason, so the rest of a batch goes on.
    """
    status = CaptureStatus(capture_id=ref.capture_id, key=ref.key, decoded=False)
    prefix = partition_prefix(output_prefix, ref.capture_id)
    written: list[str] = []
    try:
        ranges = _read_labels(store, ref.labels_key)
        status.labelled = ranges is not None

        pending: list[pa.RecordBatch] = []
        pending_frames = 0
        with store.open_read(ref.key) as stream:
            decoder = CaptureDecoder(stream, capture_id=ref.capture_id, name=ref.key)
            for batch in decoder.batches():
                pending.append(_with_labels(batch, ranges))
                pending_frames += batch.num_rows
                if pending_frames >= part_frames:
                    written.append(f"{prefix}part-{run_id}-{len(written):05d}.parquet")
                    _write_part(store, written[-1], pending)
                    pending, pending_frames = [], 0
            if pending:
                written.append(f"{prefix}part-{run_id}-{len(written):05d}.parquet")
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
    except Exception as error:  # noqa: BLE001 - one capture must never stop the batch
        status.error = f"decoding {ref.key} failed unexpectedly: {type(error).__name__}: {error}"
        logger.error("Decoding %s failed:\n%s", ref.key, traceback.format_exc())

    if status.frames == 0 and status.error is None:
        status.error = f"{ref.key}: the capture holds no packets"
    status.decoded = status.frames > 0 and not (status.error or "").startswith(("invalid labels", "decoding"))

    if not status.decoded:
        for key in written:
            store.delete(key)
        return status

    manifest = {"run_id": run_id, "capture_id": ref.capture_id, "source_key": ref.key, "parts": written}
    manifest.update({name: value for name, value in asdict(status).items() if name not in manifest})
    store.put_json(prefix + MANIFEST_NAME, manifest)
    for info in store.list(prefix):
        if info.key.endswith(".parquet") and info.key not in written:
            store.delete(info.key)
    status.parts = written
    return status


def extract_packets(
    spark: SparkSession,
    store: ObjectStore,
    captures: list[CaptureRef],
    *,
    output_prefix: str,
    run_id: str,
    part_frames: int = DEFAULT_PART_FRAMES,
) -> list[CaptureStatus]:
    """Decode ``captures`` on the executors, one Spark task per capture.

    Returns:
        One status per capture, in the order given.
    """
    if not captures:
        return []
    refs = spark.createDataFrame(
        [(ref.capture_id, ref.key, ref.labels_key) for ref in captures],
        "capture_id string, key string, labels_key string",
    ).repartition(len(captures))

    def decode_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row in batch.to_pylist():
                ref = CaptureRef(row["capture_id"], row["key"], row["labels_key"])
                status = decode_capture(
                    store, ref, output_prefix=output_prefix, run_id=run_id, part_frames=part_frames
                )
                yield pa.RecordBatch.from_pylist([{"status_json": json.dumps(asdict(status))}], schema=_STATUS_SCHEMA)

    rows = refs.mapInArrow(decode_partition, from_arrow_schema(_STATUS_SCHEMA)).collect()
    by_id = {}
    for row in rows:
        status = CaptureStatus(**json.loads(row.status_json))
        by_id[status.capture_id] = status
    return [by_id[ref.capture_id] for ref in captures]


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
