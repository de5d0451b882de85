"""The windows job on a real capture: every feature set gives windows that pass the window suite."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql.pandas.types import from_arrow_schema

from expectations import packet_suite, validate_dataframe, window_suite, window_summary_frame
from models.datasets import WindowReader
from objectstore import open_store
from spark_jobs.decoder import decode_to_table
from spark_jobs.packet_schema import PACKET_SCHEMA
from spark_jobs.windows import assign_splits, build_windows, feature_rows, fit_on_training_split

CAPTURE = "benign-http-web-bro-org.pcap"


@pytest.fixture(scope="module")
def real_split(spark, shared_captures):
    table, _summary = decode_to_table(shared_captures / CAPTURE, capture_id="bro", name=CAPTURE)
    packets = spark.createDataFrame(table.to_pandas(), from_arrow_schema(PACKET_SCHEMA))
    split = assign_splits(packets, train_fraction=0.6, validation_fraction=0.2).cache()
    yield table, split
    split.unpersist()


def test_real_capture_passes_packet_suite(real_split):
    table, _split = real_split
    outcome = validate_dataframe(table.to_pandas(), packet_suite())
    assert outcome.success, outcome.failed


@pytest.mark.parametrize("set_name,mode", [("paper", "capture"), ("stats", "host"), ("flow", "capture")])
def test_real_capture_windows_pass_window_suite(spark, real_split, tmp_path, set_name, mode):
    _table, split = real_split
    store = open_store(f"file://{tmp_path}")
    rows = feature_rows(split, set_name).cache()
    state, fitted = fit_on_training_split(
        split, window_length=8, window_stride=4, feature_set_name=set_name, window_mode=mode, rows=rows
    )
    windows = build_windows(spark, split, state, store, output_prefix="w/", rows=rows)
    rows.unpersist()
    assert fitted > 0
    reader = WindowReader(store, windows.parts, steps=windows.steps, features=windows.features)
    values = np.concatenate(list(reader.iter_windows()))
    lower, upper = windows.value_bounds
    outcome = validate_dataframe(
        window_summary_frame(values), window_suite(steps=windows.steps, features=windows.features, lower=lower, upper=upper)
    )
    assert outcome.success, outcome.failed
    assert sorted(state.baseline) == sorted(state.numeric_features)
