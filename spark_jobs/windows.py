"""Spark job: split the packet table, derive feature rows, fit preprocessing on the training part, cut windows.

Steps:
    1. Order each capture's frames by time (then frame number, so ties and
       backwards timestamps have one defined order) and split it by position:
       the first ``train_fraction`` of frames is ``train``, the next
       ``validation_fraction`` is ``validation``, the rest is ``test``.
    2. Derive the feature rows of the chosen feature set (``spark_jobs.features``):
       one row per frame, or per flow for the ``flow`` set.
    3. Fit the preprocessing state on ``train`` rows not labelled anomalous.
    4. Cut sliding windows of ``window_length`` rows every ``window_stride`` rows
       (``train`` windows every ``training_window_stride`` rows where the state
       sets it) inside each segment, in time order. A segment is one capture and split in
       ``capture`` mode, and one capture, split and host (source address, or a
       flow's initiator) in ``host`` mode, so no window spans two captures or
       two splits.
    5. Executors write the windows as Parquet parts to object storage.

Window label rule: a window's label is 1 when any frame it covers is labelled
anomalous, 0 when its frames are labelled and none is, and null when the capture
has no labels. ``anomalous_frames`` counts the anomalous frames it covers.
``first_frame`` and ``last_frame`` are the smallest and largest frame numbers it
covers, ``start_ns`` and ``end_ns`` the earliest and latest frame times.
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
from spark_jobs.feature_baseline import bin_counts, build_baseline, fine_counts, signed_log
from spark_jobs.features import (
    PACKET_COLUMNS_USED,
    FeatureSet,
    Preprocessing,
    category_strings,
    derive_rows,
    feature_set,
    fit_preprocessing,
    transform,
)

SPLITS = ("train", "validation", "test")

WINDOW_METADATA_FIELDS = [
    pa.field("capture_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("host", pa.string()),
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

# A feature row carries the same metadata as a window, except the window index.
ROW_METADATA_FIELDS = [item for item in WINDOW_METADATA_FIELDS if item.name != "window_index"]

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


def row_schema(chosen: FeatureSet) -> pa.Schema:
    """Return the Arrow schema of the feature rows of ``chosen``."""
    numeric = [pa.field(name, pa.float64(), nullable=False) for name in chosen.numeric_features]
    categorical = [pa.field(name, pa.string(), nullable=False) for name in chosen.categorical_features]
    return pa.schema(ROW_METADATA_FIELDS + numeric + categorical)


def feature_rows(split_packets: DataFrame, feature_set_name: str) -> DataFrame:
    """Derive the feature rows of ``feature_set_name`` from split packets, on the executors.

    Sets that work frame by frame run in ``mapInPandas`` without a shuffle.
    The others group by their ``group_by`` columns, so a whole capture
    (``service``, ``stats``) or a whole capture and split (``flow``) goes to one task.
    """
    chosen = feature_set(feature_set_name)
    schema = row_schema(chosen)
    columns = [column for column in (*PACKET_COLUMNS_USED, "split") if column in split_packets.columns]
    selected = split_packets.select(*columns)

    def derive(packets: pd.DataFrame) -> pd.DataFrame:
        return derive_rows(packets, chosen.name)[schema.names]

    if not chosen.group_by:
        return selected.mapInPandas(lambda frames: (derive(frame) for frame in frames), from_arrow_schema(schema))
    return selected.groupBy(*chosen.group_by).applyInPandas(derive, from_arrow_schema(schema))


def _training_rows(rows: DataFrame) -> DataFrame:
    return rows.where((F.col("split") == "train") & F.coalesce(F.col("label"), F.lit(0)).cast("int").eqNullSafe(0))


def _partial_stats(numeric: list[str], categorical: list[str]):
    """Return a mapInPandas function that summarises its rows in one JSON document."""

    def summarise(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        document = {"rows": 0, "min": {}, "max": {}, "moments": {}, "counts": {name: {} for name in categorical}}
        for rows in frames:
            if rows.empty:
                continue
            part = {"rows": len(rows), "min": {}, "max": {}, "moments": {}, "counts": {}}
            for name in numeric:
                values = rows[name].to_numpy(np.float64)
                part["min"][name], part["max"][name] = float(values.min()), float(values.max())
                mean = float(values.mean())
                part["moments"][name] = [len(values), mean, float(np.sum((values - mean) ** 2))]
            for name in categorical:
                part["counts"][name] = category_strings(rows, name).value_counts().to_dict()
            document = _merge_stats(document, part)
        yield pd.DataFrame({"stats_json": [json.dumps(document)]})

    return summarise


def _combine_moments(first: list[float], second: list[float]) -> list[float]:
    """Combine (count, mean, sum of squared deviations) of two parts, by Chan et al.'s formula."""
    count_a, mean_a, m2_a = first
    count_b, mean_b, m2_b = second
    count = count_a + count_b
    if count == 0:
        return [0, 0.0, 0.0]
    delta = mean_b - mean_a
    mean = mean_a + delta * count_b / count
    return [count, mean, m2_a + m2_b + delta * delta * count_a * count_b / count]


def _merge_stats(total: dict, part: dict) -> dict:
    total["rows"] += part["rows"]
    for name, value in part["min"].items():
        total["min"][name] = min(total["min"].get(name, np.inf), value)
    for name, value in part["max"].items():
        total["max"][name] = max(total["max"].get(name, -np.inf), value)
    for name, moments in part["moments"].items():
        total["moments"][name] = _combine_moments(total["moments"].get(name, [0, 0.0, 0.0]), moments)
    for name, counts in part["counts"].items():
        merged = Counter(total["counts"].get(name, {}))
        merged.update(counts)
        total["counts"][name] = dict(merged)
    return total


def _baseline_counts(numeric: list[str], ranges: dict[str, tuple[float, float]]):
    """Return a mapInPandas function that counts its rows per fine baseline bin of each feature."""

    def count(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        totals = {name: np.zeros(0, dtype=np.int64) for name in numeric}
        for rows in frames:
            for name in numeric:
                counts = fine_counts(rows[name].to_numpy(np.float64), *ranges[name])
                totals[name] = counts if totals[name].size == 0 else totals[name] + counts
        yield pd.DataFrame({"stats_json": [json.dumps({name: values.tolist() for name, values in totals.items()})]})

    return count


def fit_on_training_split(
    split_packets: DataFrame,
    *,
    window_length: int,
    window_stride: int,
    feature_set_name: str = "paper",
    scaler: str = "minmax",
    out_of_range: str = "clip",
    window_mode: str = "capture",
    rows: DataFrame | None = None,
    training_window_stride: int | None = None,
) -> tuple[Preprocessing, int]:
    """Fit the preprocessing state on training rows not labelled anomalous.

    Only rows of the ``train`` split reach the statistics: minimum, maximum,
    mean and deviation of each numeric feature, category counts and the drift
    baseline. Partial results are merged in a fixed order, so the same training
    rows give a byte-identical state.

    Args:
        split_packets: packets with ``split`` from ``assign_splits``.
        window_length: rows per window.
        window_stride: rows between window starts.
        feature_set_name: one of ``spark_jobs.features.FEATURE_SET_NAMES``.
        scaler: ``minmax`` or ``standard``.
        out_of_range: ``clip`` or ``flag``.
        window_mode: ``capture`` or ``host``.
        rows: the feature rows of ``split_packets`` when the caller already
            derived (and cached) them with ``feature_rows``.
        training_window_stride: rows between the starts of ``train`` windows
            (see ``Preprocessing.stride_of``); None means ``window_stride``.

    Returns:
        The state and the number of rows it was fitted on.
    """
    chosen = feature_set(feature_set_name)
    rows = rows if rows is not None else feature_rows(split_packets, chosen.name)
    training = _training_rows(rows)
    numeric, categorical = list(chosen.numeric_features), list(chosen.categorical_features)

    summaries = training.mapInPandas(_partial_stats(numeric, categorical), from_arrow_schema(_STATS_SCHEMA)).collect()
    documents = sorted((row.stats_json for row in summaries))
    stats = {"rows": 0, "min": {}, "max": {}, "moments": {}, "counts": {}}
    for document in documents:
        stats = _merge_stats(stats, json.loads(document))

    baseline = {}
    if stats["rows"]:
        ranges = {name: (float(signed_log(stats["min"][name])), float(signed_log(stats["max"][name]))) for name in numeric}
        count_rows = training.mapInPandas(_baseline_counts(numeric, ranges), from_arrow_schema(_STATS_SCHEMA)).collect()
        totals = {name: np.zeros(0, dtype=np.int64) for name in numeric}
        for row in count_rows:
            for name, values in json.loads(row.stats_json).items():
                if values:
                    totals[name] = np.asarray(values) if totals[name].size == 0 else totals[name] + np.asarray(values)
        baseline = {name: build_baseline(totals[name], *ranges[name]) for name in numeric if totals[name].size}

    moments = stats["moments"]
    state = fit_preprocessing(
        stats["min"],
        stats["max"],
        stats["counts"],
        window_length=window_length,
        window_stride=window_stride,
        feature_set_name=chosen.name,
        scaler=scaler,
        out_of_range=out_of_range,
        window_mode=window_mode,
        training_window_stride=training_window_stride,
        numeric_mean={name: value[1] for name, value in moments.items()},
        numeric_std={name: float(np.sqrt(value[2] / value[0])) if value[0] else 0.0 for name, value in moments.items()},
        baseline=baseline,
        fitted_rows=stats["rows"],
    )
    return state, stats["rows"]


def _empty_windows() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in WINDOW_SCHEMA.names})


def cut_segment(segment: pd.DataFrame, state: Preprocessing) -> pd.DataFrame:
    """Cut the windows of one segment; returns rows of ``WINDOW_SCHEMA``.

    Args:
        segment: the feature rows of one segment. Packet rows are accepted too
            and turned into feature rows first, as one capture.
        state: fitted preprocessing state.
    """
    if "first_frame" not in segment.columns:
        segment = derive_rows(segment, state.feature_set)
    segment = segment.sort_values(["start_ns", "first_frame"], kind="stable").reset_index(drop=True)
    length, stride = state.window_length, state.stride_of(segment["split"].iloc[0] if len(segment) else None)
    starts = window_starts(len(segment), length, stride)
    if len(starts) == 0:
        return _empty_windows()

    features, _counts = transform(segment, state)
    has_labels = segment["label"].notna().any()
    host = segment["host"].iloc[0] if state.window_mode == "host" else None

    def over_windows(column: str) -> np.ndarray:
        values = segment[column].to_numpy(np.int64)
        return np.lib.stride_tricks.sliding_window_view(values, length)[starts]

    views = np.lib.stride_tricks.sliding_window_view(features, (length, features.shape[1]))[:, 0]
    windows = views[starts]
    anomalous = over_windows("anomalous_frames").sum(axis=1)
    return pd.DataFrame(
        {
            "capture_id": segment["capture_id"].iloc[0],
            "split": segment["split"].iloc[0],
            "host": host if isinstance(host, str) else None,
            "window_index": starts // stride,
            "first_frame": over_windows("first_frame").min(axis=1),
            "last_frame": over_windows("last_frame").max(axis=1),
            "start_ns": over_windows("start_ns").min(axis=1),
            "end_ns": over_windows("end_ns").max(axis=1),
            "label": (anomalous > 0).astype(np.int8) if has_labels else None,
            "anomalous_frames": anomalous.astype(np.int32),
            "values": list(windows.reshape(len(starts), -1).astype(np.float32)),
        }
    )


@dataclass
class WindowSet:
    """Where the windows of a run are stored, how many each split holds, and what scaling met.

    Attributes:
        parts: keys of the Parquet parts.
        steps: rows per window.
        features: features per row.
        feature_names: order of the features in the last tensor axis.
        counts: windows per split.
        frames_per_capture: frames of each capture in the packet table.
        windows_per_capture: windows cut from each capture.
        feature_set: the feature set of the rows.
        window_mode: ``capture`` or ``host``.
        rows_per_capture: feature rows (frames, or flows) of each capture.
        out_of_range_counts: per split, per numeric feature, values outside the
            training range (clipped or kept, as ``out_of_range`` sets).
        unknown_category_counts: per split, per categorical feature, values
            never seen in training (coded as unknown).
        value_bounds: smallest and largest value a window can hold, or None
            when out-of-range values are kept (``flag``).
        short_segments: segments (capture and split, plus host in ``host``
            mode) with fewer rows than one window, which produced no window.
    """

    parts: list[str]
    steps: int
    features: int
    feature_names: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    frames_per_capture: dict[str, int] = field(default_factory=dict)
    windows_per_capture: dict[str, int] = field(default_factory=dict)
    feature_set: str = "paper"
    window_mode: str = "capture"
    rows_per_capture: dict[str, int] = field(default_factory=dict)
    out_of_range_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    unknown_category_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    value_bounds: tuple[float, float] | None = (0.0, 1.0)
    short_segments: int = 0

    @property
    def short_captures(self) -> list[str]:
        """Captures that produced no window because they are shorter than one window."""
        return sorted(cid for cid, frames in self.frames_per_capture.items() if self.windows_per_capture.get(cid, 0) == 0)


def _transform_counts(state: Preprocessing):
    """Return a mapInPandas function that counts out-of-range values and unknown categories per split."""

    def count(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        per_split: dict[str, Counter] = {}
        for rows in frames:
            for split, group in rows.groupby("split"):
                _values, counts = transform(group, state)
                per_split.setdefault(split, Counter()).update(counts)
        yield pd.DataFrame({"stats_json": [json.dumps({split: dict(counts) for split, counts in per_split.items()})]})

    return count


def _write_parts(store: ObjectStore, output_prefix: str):
    """Return a mapInArrow function that writes its windows as one Parquet part and yields a status row."""

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
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

    return write


def build_windows(
    spark: SparkSession,
    split_packets: DataFrame,
    state: Preprocessing,
    store: ObjectStore,
    *,
    output_prefix: str,
    rows: DataFrame | None = None,
) -> WindowSet:
    """Cut windows with ``state`` and write them as Parquet parts under ``output_prefix``.

    Args:
        spark: the session that made ``split_packets``.
        split_packets: packets with ``split`` from ``assign_splits``.
        state: fitted preprocessing state; its feature set and window mode apply.
        store: where the parts go.
        output_prefix: key prefix of the parts.
        rows: the feature rows of ``split_packets`` when the caller already
            derived them; derived (and cached for this call) otherwise.
    """
    owned = rows is None
    rows = feature_rows(split_packets, state.feature_set).cache() if owned else rows
    try:
        segment_keys = ["capture_id", "split"] + (["host"] if state.window_mode == "host" else [])
        windows = rows.groupBy(*segment_keys).applyInPandas(
            lambda segment: cut_segment(segment, state), from_arrow_schema(WINDOW_SCHEMA)
        )
        statuses = [
            json.loads(row.status_json)
            for row in windows.mapInArrow(_write_parts(store, output_prefix), from_arrow_schema(_PART_STATUS_SCHEMA)).collect()
        ]
        frames = {row["capture_id"]: row["count"] for row in split_packets.groupBy("capture_id").count().collect()}
        row_counts = {row["capture_id"]: row["count"] for row in rows.groupBy("capture_id").count().collect()}
        short_segments = rows.groupBy(*segment_keys).count().where(F.col("count") < state.window_length).count()
        transform_documents = rows.mapInPandas(_transform_counts(state), from_arrow_schema(_STATS_SCHEMA)).collect()
    finally:
        if owned:
            rows.unpersist()

    result = WindowSet(
        parts=sorted(status["key"] for status in statuses),
        steps=state.window_length,
        features=len(state.feature_names),
        feature_names=list(state.feature_names),
        frames_per_capture=frames,
        feature_set=state.feature_set,
        window_mode=state.window_mode,
        rows_per_capture=row_counts,
        value_bounds=state.value_bounds(),
        short_segments=short_segments,
    )
    counts: Counter = Counter()
    per_capture: Counter = Counter()
    for status in statuses:
        counts.update(status["splits"])
        per_capture.update(status["captures"])
    result.counts = {split: counts.get(split, 0) for split in SPLITS}
    result.windows_per_capture = dict(per_capture)

    per_split: dict[str, Counter] = {}
    for row in transform_documents:
        for split, split_counts in json.loads(row.stats_json).items():
            per_split.setdefault(split, Counter()).update(split_counts)
    for split, split_counts in sorted(per_split.items()):
        out_of_range = {name.removesuffix("_out_of_range"): n for name, n in split_counts.items() if name.endswith("_out_of_range")}
        unknown = {name.removesuffix("_unknown"): n for name, n in split_counts.items() if name.endswith("_unknown")}
        if out_of_range:
            result.out_of_range_counts[split] = dict(sorted(out_of_range.items()))
        if unknown:
            result.unknown_category_counts[split] = dict(sorted(unknown.items()))
    return result


def baseline_bin_counts(rows: DataFrame, baseline: dict[str, dict], *, splits: tuple[str, ...] | None = None) -> dict[str, list[int]]:
    """Count feature rows per baseline bin of each feature, on the executors, for the drift suite.

    Args:
        rows: feature rows from ``feature_rows``.
        baseline: per numeric feature, the baseline document of a fitted state.
        splits: count only rows of these splits; all rows when None.

    Returns:
        Per feature of ``baseline`` that ``rows`` has, the counts [below, bins..., above].
    """
    names = [name for name in baseline if name in rows.columns]
    selected = rows.where(F.col("split").isin(list(splits))) if splits is not None else rows

    def count(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        totals = {name: np.zeros(len(baseline[name]["proportions"]), dtype=np.int64) for name in names}
        for frame in frames:
            for name in names:
                totals[name] += bin_counts(frame[name].to_numpy(np.float64), baseline[name])
        yield pd.DataFrame({"stats_json": [json.dumps({name: values.tolist() for name, values in totals.items()})]})

    result = {name: np.zeros(len(baseline[name]["proportions"]), dtype=np.int64) for name in names}
    for row in selected.select(*names, "split").mapInPandas(count, from_arrow_schema(_STATS_SCHEMA)).collect():
        for name, values in json.loads(row.stats_json).items():
            result[name] += np.asarray(values, dtype=np.int64)
    return {name: values.tolist() for name, values in result.items()}
