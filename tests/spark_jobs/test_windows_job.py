"""The Spark windows job on synthetic packet tables: splits, fitting, windows, time zones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.pandas.types import from_arrow_schema

from models.datasets import WindowReader
from objectstore import open_store
from spark_jobs.features import FEATURE_SET_NAMES
from spark_jobs.packet_schema import PACKET_SCHEMA
from spark_jobs.windows import (
    WINDOW_METADATA_COLUMNS,
    assign_splits,
    build_windows,
    fit_on_training_split,
    window_count,
)
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
    assert values.min() >= 0.0
    assert values.max() <= 1.0


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


def _run_with(spark, table, folder, **options):
    store = open_store(f"file://{folder / 'store'}")
    split = assign_splits(_frame(spark, table), train_fraction=0.6, validation_fraction=0.2)
    length, stride = options.pop("length", 8), options.pop("stride", 4)
    state, fitted = fit_on_training_split(split, window_length=length, window_stride=stride, **options)
    windows = build_windows(spark, split, state, store, output_prefix="w/")
    reader = WindowReader(store, windows.parts, steps=windows.steps, features=windows.features)
    return state, fitted, windows, reader


def _split_of_frames(frames: int) -> dict[int, str]:
    """Split of each frame of a synthetic capture, whose frames are in time order."""
    train_end, validation_end = int(frames * 0.6), int(frames * 0.8)
    splits = {}
    for number in range(1, frames + 1):
        if number <= train_end:
            splits[number] = "train"
        elif number <= validation_end:
            splits[number] = "validation"
        else:
            splits[number] = "test"
    return splits


@pytest.mark.parametrize("feature_set_name", FEATURE_SET_NAMES)
def test_feature_set_windows_stay_in_segment(spark, tmp_path, feature_set_name):
    table = pa.concat_tables([synthetic_packets("a", 150, seed=11), synthetic_packets("b", 90, seed=12)])
    state, _fitted, windows, reader = _run_with(spark, table, tmp_path, feature_set_name=feature_set_name, length=4, stride=2)
    values = np.concatenate(list(reader.iter_windows()))
    assert np.isfinite(values).all()
    assert values.shape[1:] == (4, len(state.feature_names))
    assert values.min() >= 0.0
    assert values.max() <= 1.0
    metadata = reader.metadata()
    assert len(metadata) == sum(windows.counts.values())
    splits = {"a": _split_of_frames(150), "b": _split_of_frames(90)}
    for row in metadata.itertuples():
        assert splits[row.capture_id][row.first_frame] == row.split
        assert splits[row.capture_id][row.last_frame] == row.split
    assert windows.feature_set == feature_set_name


@pytest.mark.parametrize("feature_set_name,scaler", [("stats", "minmax"), ("flow", "minmax"), ("paper", "standard")])
def test_changing_test_split_leaves_every_fitted_state_identical(spark, tmp_path, feature_set_name, scaler):
    base = synthetic_packets("a", 200, seed=4).to_pandas()
    changed = base.copy()
    test_rows = changed.index >= 160
    changed.loc[test_rows, "frame_len"] = 9000
    changed.loc[test_rows, "src_addr"] = "203.0.113.99"
    changed.loc[test_rows, "protocol"] = "QUIC"
    options = {"feature_set_name": feature_set_name, "scaler": scaler}
    state_a, *_ = _run_with(spark, pa.Table.from_pandas(base, schema=PACKET_SCHEMA), tmp_path / "a", **options)
    state_b, _fitted, windows_b, reader_b = _run_with(
        spark, pa.Table.from_pandas(changed, schema=PACKET_SCHEMA), tmp_path / "b", **options
    )
    assert json.dumps(state_a.to_json(), sort_keys=True) == json.dumps(state_b.to_json(), sort_keys=True)
    assert windows_b.out_of_range_counts["test"]
    assert np.isfinite(np.concatenate(list(reader_b.iter_windows()))).all()


def test_unseen_host_and_protocol_are_counted_per_split(spark, tmp_path):
    changed = synthetic_packets("a", 200, seed=4).to_pandas()
    changed.loc[changed.index >= 160, "src_addr"] = "203.0.113.99"
    changed.loc[changed.index >= 160, "protocol"] = "QUIC"
    _state, _fitted, windows, _reader = _run_with(spark, pa.Table.from_pandas(changed, schema=PACKET_SCHEMA), tmp_path)
    assert windows.unknown_category_counts["test"]["src_addr"] == 40
    assert windows.unknown_category_counts["test"]["protocol"] == 40
    assert "train" not in windows.unknown_category_counts


def test_host_windows_hold_one_source_host_each(spark, tmp_path):
    table = synthetic_packets("a", 400, seed=13)
    sources = dict(zip(table.column("frame_number").to_pylist(), table.column("src_addr").to_pylist()))
    _state, _fitted, windows, _reader = _run_with(spark, table, tmp_path, window_mode="host", length=4, stride=2)
    metadata = pd.concat(
        [pq.read_table(tmp_path / "store" / key, columns=WINDOW_METADATA_COLUMNS).to_pandas() for key in windows.parts]
    )
    assert windows.window_mode == "host"
    assert len(metadata) > 0
    for row in metadata.itertuples():
        assert sources[row.first_frame] == row.host
        assert sources[row.last_frame] == row.host
    frame = table.to_pandas()
    frame["split"] = frame["frame_number"].map(_split_of_frames(400))
    expected = sum(window_count(n, 4, 2) for n in frame.groupby(["split", "src_addr"]).size())
    assert len(metadata) == expected


def test_capture_shorter_than_one_window_is_reported(spark, tmp_path):
    table = pa.concat_tables([synthetic_packets("long", 120, seed=14), synthetic_packets("short", 5, seed=15)])
    _state, _fitted, windows, reader = _run_with(spark, table, tmp_path)
    assert windows.short_captures == ["short"]
    assert windows.short_segments == 3
    assert set(reader.metadata()["capture_id"]) == {"long"}


def test_standard_scaler_bounds_hold_every_window_value(spark, tmp_path):
    table = synthetic_packets("a", 200, seed=16)
    state, _fitted, windows, reader = _run_with(spark, table, tmp_path, scaler="standard")
    lower, upper = windows.value_bounds
    values = np.concatenate(list(reader.iter_windows()))
    assert state.scaler == "standard"
    assert lower <= values.min()
    assert values.max() <= upper


_TZ_SCRIPT = """
import json, sys
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.pandas.types import from_arrow_schema
from models.datasets import WindowReader
from objectstore import open_store
from spark_jobs.packet_schema import PACKET_SCHEMA
from spark_jobs.session import get_spark
from spark_jobs.windows import assign_splits, build_windows, fit_on_training_split
from tests.packet_tables import synthetic_packets

spark = get_spark(master="local[1]", shuffle_partitions=2)
table = synthetic_packets("a", 80, seed=6)
packets = spark.createDataFrame(table.to_pandas(), from_arrow_schema(PACKET_SCHEMA))
split = assign_splits(packets, train_fraction=0.6, validation_fraction=0.2)
state, _ = fit_on_training_split(split, window_length=8, window_stride=4, feature_set_name="stats")
store = open_store("file://" + sys.argv[1])
windows = build_windows(spark, split, state, store, output_prefix="w/")
reader = WindowReader(store, windows.parts, steps=windows.steps, features=windows.features)
metadata = reader.metadata().sort_values(["split", "first_frame"])
print(json.dumps({"starts": metadata["start_ns"].tolist(), "sum": float(np.concatenate(list(reader.iter_windows())).sum())}))
spark.stop()
"""


@pytest.mark.slow
def test_windows_do_not_depend_on_process_tz(spark, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "TZ": "Pacific/Chatham", "PYTHONPATH": str(repo), "SPARK_LOCAL_IP": "127.0.0.1"}
    completed = subprocess.run(
        [sys.executable, "-c", _TZ_SCRIPT, str(tmp_path / "tz")],
        cwd=repo, env=environment, capture_output=True, text=True, timeout=300, check=True,
    )
    other = json.loads(completed.stdout.strip().splitlines()[-1])

    table = synthetic_packets("a", 80, seed=6)
    _state, _fitted, _windows, reader = _run_with(spark, table, tmp_path / "here", feature_set_name="stats")
    metadata = reader.metadata().sort_values(["split", "first_frame"])
    assert other["starts"] == metadata["start_ns"].tolist()
    assert other["sum"] == pytest.approx(float(np.concatenate(list(reader.iter_windows())).sum()), rel=1e-6)
