"""Spark job: split the packet table, fit preprocessing on the training part, cut windows.

Steps:
    1. Order each capture's frames by time (then frame number, so ties and
       backwards timestamps have one defined order) and split it by position:
       the first ``train_fraction`` of frames is ``train``, the next
       ``validation_fraction`` is ``validation``, the rest is ``test``.
    2. Fit the preprocessing state on ``train`` frames not labelled anomalous.
    3. Cut sliding windows of ``window_length`` frames every ``window_stride``
       frames inside each (capture, split) segment, so no window spans two
       captures or two splits.
    4. Executors write the windows as Parquet parts to object storage.

A window's label is 1 when any of its frames is labelled anomalous, 0 when its
frames are labelled and none is, and null when the capture has no labels.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from objectstore import ObjectStore
from spark_jobs.features import (
    CATEGORICAL_FEATURES,
    PACKET_COLUMNS_USED,
    Preprocessing,
    category_strings,
    fit_preprocessing,
    numeric_frame,
    transform,
)

SPLITS = ("train", "validation", "test")

WINDOW_METADATA_FIELDS = [
    pa.field("capture_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("window_index", pa.int64(), nullable=False),
    pa.field("first_frame", pa.int64(), nullable=False),
    pa.field("last_frame", pa.int64(), nullable=False),
    pa.field("start_ns", pa.int64(), nullable=False),
    pa.field("end_ns", pa.int64(), nullable=False),
    pa.field("label", pa.int8()),
    pa.field("anomalous_frames", pa.int32(), nullable=False),
]
WINDOW_SCHEMA = pa.schema(WINDOW_METADATA_FIELDS + [pa.field("values", pa.list_(pa.float32()), nullable=False)])
WINDOW_METADATA_COLUMNS = [item.name for item in WINDOW_METADATA_FIELDS]

_PART_STATUS_SCHEMA = pa.schema([pa.field("status_json", pa.string(), nullable=False)])
_STATS_SCHEMA = pa.schema([pa.field("stats_json", pa.string(), nullable=False)])


def window_count(frames: int, length: int, stride: int) -> int:
    """Return how many windows of ``length`` frames every ``stride`` frames fit in ``frames``.

    Closed form: ``(frames - length) // stride + 1`` when ``frames >= length``, else 0.
    The last frames of a segment are left out when the stride does not divide
    ``frames - length``.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be at least 1, got length={length}, stride={stride}")
    if frames < length:
        return 0
    return (frames - length) // stride + 1


def window_starts(frames: int, length: int, stride: int) -> np.ndarray:
    """Return the 0-based start offset of every window in a segment of ``frames`` frames."""
    return np.arange(window_count(frames, length, stride), dtype=np.int64) * stride


def assign_splits(packets: DataFrame, *, train_fraction: float, validation_fraction: float) -> DataFrame:
    """Add ``position`` (0-based rank in time order within the capture) and ``split``."""
    order = Window.partitionBy("capture_id").orderBy("timestamp_ns", "frame_number")
    per_capture = Window.partitionBy("capture_id")
    ranked = packets.withColumn("position", F.row_number().over(order) - 1).withColumn(
        "capture_frames", F.count(F.lit(1)).over(per_capture)
    )
    train_end = F.floor(F.col("capture_frames") * F.lit(train_fraction))
    validation_end = F.floor(F.col("capture_frames") * F.lit(train_fraction + validation_fraction))
    split = (
        F.when(F.col("position") < train_end, F.lit("train"))
        .when(F.col("position") < validation_end, F.lit("validation"))
        .otherwise(F.lit("test"))
    )
    return ranked.withColumn("split", split)


def _partial_stats(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    minimum: dict[str, float] = {}
    maximum: dict[str, float] = {}
    counts: dict[str, Counter] = {name: Counter() for name in CATEGORICAL_FEATURES}
    rows = 0
    for packets in frames:
        if packets.empty:
            continue
        rows += len(packets)
        raw = numeric_frame(packets)
        for name in raw.columns:
            minimum[name] = min(minimum.get(name, np.inf), float(raw[name].min()))
            maximum[name] = max(maximum.get(name, -np.inf), float(raw[name].max()))
        for name in CATEGORICAL_FEATURES:
            counts[name].update(category_strings(packets, name).value_counts().to_dict())
    document = {"rows": rows, "min": minimum, "max": maximum, "counts": {k: dict(v) for k, v in counts.items()}}
    yield pd.DataFrame({"stats_json": [json.dumps(document)]})


def fit_on_training_split(split_packets: DataFrame, *, window_length: int, window_stride: int) -> tuple[Preprocessing, int]:
    """Fit the preprocessing state on training frames not labelled anomalous.

    Returns:
        The state and the number of frames it was fitted on.
    """
    training = split_packets.where((F.col("split") == "train") & F.coalesce(F.col("label"), F.lit(0)).cast("int").eqNullSafe(0))
    documents = [json.loads(row.stats_json) for row in training.mapInPandas(_partial_stats, from_arrow_schema(_STATS_SCHEMA)).collect()]
    minimum: dict[str, float] = {}
    maximum: dict[str, float] = {}
    counts: dict[str, Counter] = {name: Counter() for name in CATEGORICAL_FEATURES}
    rows = 0
    for document in documents:
        rows += document["rows"]
        for name, value in document["min"].items():
            minimum[name] = min(minimum.get(name, np.inf), value)
        for name, value in document["max"].items():
            maximum[name] = max(maximum.get(name, -np.inf), value)
        for name, value_counts in document["counts"].items():
            counts[name].update(value_counts)
    state = fit_preprocessing(minimum, maximum, {k: dict(v) for k, v in counts.items()}, window_length=window_length, window_stride=window_stride)
    return state, rows


def cut_segment(segment: pd.DataFrame, state: Preprocessing) -> pd.DataFrame:
    """Cut the windows of one (capture, split) segment; returns rows of ``WINDOW_SCHEMA``."""
    segment = segment.sort_values(["timestamp_ns", "frame_number"], kind="stable").reset_index(drop=True)
    length, stride = state.window_length, state.window_stride
    starts = window_starts(len(segment), length, stride)
    if len(starts) == 0:
        return pd.DataFrame({name: pd.Series(dtype="object") for name in WINDOW_SCHEMA.names})

    features, _counts = transform(segment, state)
    frame_numbers = segment["frame_number"].to_numpy(np.int64)
    times = segment["timestamp_ns"].to_numpy(np.int64)
    has_labels = segment["label"].notna().any()
    labels = pd.to_numeric(segment["label"], errors="coerce").fillna(0).to_numpy(np.int64)

    views = np.lib.stride_tricks.sliding_window_view(features, (length, features.shape[1]))[:, 0]
    windows = views[starts]
    label_views = np.lib.stride_tricks.sliding_window_view(labels, length)[starts]
    anomalous = label_views.sum(axis=1)
    ends = starts + length - 1
    return pd.DataFrame(
        {
            "capture_id": segment["capture_id"].iloc[0],
            "split": segment["split"].iloc[0],
            "window_index": starts // stride,
            "first_frame": frame_numbers[starts],
            "last_frame": frame_numbers[ends],
            "start_ns": times[starts],
            "end_ns": times[ends],
            "label": (anomalous > 0).astype(np.int8) if has_labels else None,
            "anomalous_frames": anomalous.astype(np.int32),
            "values": list(windows.reshape(len(starts), -1).astype(np.float32)),
        }
    )


@dataclass
class WindowSet:
    """Where the windows of a run are stored and how many each split holds."""

    parts: list[str]
    steps: int
    features: int
    feature_names: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    frames_per_capture: dict[str, int] = field(default_factory=dict)
    windows_per_capture: dict[str, int] = field(default_factory=dict)

    @property
    def short_captures(self) -> list[str]:
        """Captures that produced no window because they are shorter than one window."""
        return sorted(cid for cid, frames in self.frames_per_capture.items() if self.windows_per_capture.get(cid, 0) == 0)


def build_windows(
    spark: SparkSession,
    split_packets: DataFrame,
    state: Preprocessing,
    store: ObjectStore,
    *,
    output_prefix: str,
) -> WindowSet:
    """Cut windows with ``state`` and write them as Parquet parts under ``output_prefix``."""
    columns = ["capture_id", "split", "frame_number", "timestamp_ns", "label", *PACKET_COLUMNS_USED]
    selected = split_packets.select(*dict.fromkeys(columns))
    window_spark_schema = from_arrow_schema(WINDOW_SCHEMA)
    windows = selected.groupBy("capture_id", "split").applyInPandas(lambda pdf: cut_segment(pdf, state), window_spark_schema)

    def write_parts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        collected = [batch for batch in batches if batch.num_rows]
        if not collected:
            return
        table = pa.Table.from_batches(collected).cast(WINDOW_SCHEMA)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        key = f"{output_prefix}part-{uuid.uuid4().hex[:12]}.parquet"
        store.put_bytes(key, buffer.getvalue())
        splits = Counter(table.column("split").to_pylist())
        captures = Counter(table.column("capture_id").to_pylist())
        status = {"key": key, "splits": dict(splits), "captures": dict(captures)}
        yield pa.RecordBatch.from_pylist([{"status_json": json.dumps(status)}], schema=_PART_STATUS_SCHEMA)

    statuses = [json.loads(row.status_json) for row in windows.mapInArrow(write_parts, from_arrow_schema(_PART_STATUS_SCHEMA)).collect()]
    frames = {row["capture_id"]: row["count"] for row in split_packets.groupBy("capture_id").count().collect()}
    result = WindowSet(
        parts=sorted(status["key"] for status in statuses),
        steps=state.window_length,
        features=len(state.feature_names),
        feature_names=list(state.feature_names),
        frames_per_capture=frames,
    )
    counts: Counter = Counter()
    per_capture: Counter = Counter()
    for status in statuses:
        counts.update(status["splits"])
        per_capture.update(status["captures"])
    result.counts = {split: counts.get(split, 0) for split in SPLITS}
    result.windows_per_capture = dict(per_capture)
    return result
