"""The Spark windows job on synthetic packet tables: splits, fitting, windows, time zones."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql.pandas.types import from_arrow_schema

from models.datasets import WindowReader
from objectstore import open_store
from spark_jobs.packet_schema import PACKET_SCHEMA
from spark_jobs.windows import assign_splits, build_windows, fit_on_training_split, window_count
from tests.packet_tables import synthetic_packets


def _frame(spark, table: pa.Table):
    return spark.createDataFrame(table.to_pandas(), from_arrow_schema(PACKET_SCHEMA))


def _run(spark, table, tmp_path, *, length=8, stride=4, prefix="w/"):
    store = open_store(f"file://{tmp_path / 'store'}")
    split = assign_splits(_frame(spark, table), train_fraction=0.6, validation_fraction=0.2)
    state, fitted = fit_on_training_split(split, window_length=length, window_stride=stride)
    windows = build_windows(spark, split, state, store, output_prefix=prefix)
    reader = WindowReader(store, windows.parts, steps=windows.steps, features=windows.features)
    return state, fitted, windows, reader


def test_windows_never_cross_captures_or_splits(spark, tmp_path):
    table = pa.concat_tables([synthetic_packets("a", 100, seed=1), synthetic_packets("b", 57, seed=2)])
    _state, _fitted, windows, reader = _run(spark, table, tmp_path)
    metadata = reader.metadata()
    expected = sum(window_count(n, 8, 4) for n in (60, 20, 20, 34, 11, 12))
    assert len(metadata) == expected
    for (capture_id, split), group in metadata.groupby(["capture_id", "split"]):
        assert group["last_frame"].max() <= (100 if capture_id == "a" else 57)
    first_b = metadata[metadata.capture_id == "b"]["first_frame"].min()
    assert first_b == 1


def test_all_values_are_finite_and_in_unit_range(spark, tmp_path):
    table = synthetic_packets("a", 120, seed=3)
    _state, _fitted, _windows, reader = _run(spark, table, tmp_path)
    blocks = list(reader.iter_windows())
    values = np.concatenate(blocks)
    assert np.isfinite(values).all()
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_changing_test_split_leaves_fitted_state_identical(spark, tmp_path):
    base = synthetic_packets("a", 200, seed=4).to_pandas()
    changed = base.copy()
    test_rows = changed.index >= 160
    changed.loc[test_rows, "frame_len"] = 9000
    changed.loc[test_rows, "src_addr"] = "203.0.113.99"
    state_a, *_ = _run(spark, pa.Table.from_pandas(base, schema=PACKET_SCHEMA), tmp_path / "a")
    state_b, *_ = _run(spark, pa.Table.from_pandas(changed, schema=PACKET_SCHEMA), tmp_path / "b")
    assert json.dumps(state_a.to_json(), sort_keys=True) == json.dumps(state_b.to_json(), sort_keys=True)


def test_anomalous_training_frames_are_not_fitted(spark, tmp_path):
    labels = np.zeros(100, dtype=np.int8)
    labels[10:20] = 1
    table = synthetic_packets("a", 100, seed=5, labels=labels)
    _state, fitted, _windows, _reader = _run(spark, table, tmp_path)
    assert fitted == 60 - 10


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_windows_do_not_depend_on_session_time_zone(spark, tmp_path, zone):
    table = synthetic_packets("a", 80, seed=6)
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        _state, _fitted, _windows, reader = _run(spark, table, tmp_path / zone)
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    metadata = reader.metadata().sort_values(["split", "first_frame"])
    assert metadata["start_ns"].min() == table.column("timestamp_ns")[0].as_py()
    values = np.concatenate(list(reader.iter_windows()))
    assert float(values.sum()) == pytest.approx(_reference_sum(spark, table, tmp_path / "reference"), rel=1e-6)


def _reference_sum(spark, table, folder):
    _state, _fitted, _windows, reader = _run(spark, table, folder)
    return float(np.concatenate(list(reader.iter_windows())).sum())
