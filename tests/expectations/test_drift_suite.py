"""The drift suite names the features that moved, and Data Docs are built and published."""

from __future__ import annotations

import json
import posixpath
import re

import numpy as np
import pandas as pd
import pytest

from expectations import validate_dataframe, window_suite, window_summary_frame
from expectations.data_docs import publish_data_docs
from expectations.drift_suite import check_drift, drift_suite, drift_summary_from_rows
from objectstore import open_store
from spark_jobs.feature_baseline import baseline_of


def _baselines(frame: pd.DataFrame) -> dict[str, dict]:
    return {name: baseline_of(frame[name].to_numpy()) for name in frame.columns}


def _day(seed: int, *, frame_len_shift: float = 0.0, ttl: float = 64.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "frame_len": rng.normal(600.0, 80.0, size=4000) + frame_len_shift,
            "log_inter_arrival_us": rng.exponential(3.0, size=4000),
            "ttl": np.full(4000, ttl),
        }
    )


def test_same_distribution_passes():
    baseline = _baselines(_day(1))
    report = check_drift(drift_summary_from_rows(_day(2), baseline))
    assert report.outcome.success
    assert report.moved == []


def test_moved_columns_are_named():
    baseline = _baselines(_day(1))
    report = check_drift(drift_summary_from_rows(_day(2, frame_len_shift=300.0, ttl=128.0), baseline))
    assert not report.outcome.success
    assert report.moved == ["frame_len", "ttl"]
    failed_columns = {failure["column"] for failure in report.outcome.failed}
    assert failed_columns == {"psi", "ks_distance"}
    named = {row["feature"] for failure in report.outcome.failed for row in failure["details"].get("rows", [])}
    assert named == {"frame_len", "ttl"}


def test_feature_without_new_rows_fails_not_null():
    baseline = _baselines(_day(1))
    report = check_drift(drift_summary_from_rows(_day(2).iloc[:0], baseline))
    assert not report.outcome.success
    assert report.moved == []


@pytest.mark.parametrize("bounds,message", [({"psi_max": 0.0}, "psi_max must be a positive"), ({"ks_max": 1.5}, "ks_max must be at most 1")])
def test_invalid_bounds_are_rejected(bounds, message):
    with pytest.raises(ValueError, match=message):
        drift_suite(**bounds)


def _publish_drift_and_windows(tmp_path):
    """Publish Data Docs for a drift result and a window result; return the store and the keys written."""
    baseline = _baselines(_day(1))
    drift = check_drift(drift_summary_from_rows(_day(2, frame_len_shift=300.0), baseline))
    windows = validate_dataframe(window_summary_frame(np.full((3, 4, 2), 0.5, dtype=np.float32)), window_suite(steps=4, features=2))
    store = open_store(f"file://{tmp_path}")
    keys = publish_data_docs(
        {"drift": drift.outcome.result, "windows": windows.result}, store, "validations/r1/data_docs/", run_name="r1"
    )
    return store, keys


def test_data_docs_publish_index_and_pages(tmp_path):
    store, keys = _publish_drift_and_windows(tmp_path)
    assert "validations/r1/data_docs/index.html" in keys
    pages = [key for key in keys if key.removeprefix("validations/r1/data_docs/").startswith("validations/")]
    assert {key.rsplit("/", 1)[-1] for key in pages} == {"drift.html", "windows.html"}
    assert not [key for key in keys if key.endswith(".gif")]
    index = store.get_bytes("validations/r1/data_docs/index.html").decode("utf-8")
    assert "drift" in index
    drift_page = store.get_bytes(next(key for key in pages if key.endswith("drift.html"))).decode("utf-8")
    assert "ks_distance" in drift_page


def test_data_docs_page_links_resolve(tmp_path):
    store, keys = _publish_drift_and_windows(tmp_path)

    pages = [key for key in keys if key.endswith(".html")]
    assert "validations/r1/data_docs/expectations/drift.html" in pages
    assert "validations/r1/data_docs/expectations/windows.html" in pages
    links = 0
    for page in pages:
        html = store.get_bytes(page).decode("utf-8")
        assert "great-expectations-web-assets" not in html
        for link in re.findall(r'(?:href|src)="([^"#?]+)"', html):
            if "://" in link or link.startswith(("data:", "mailto:")):
                continue
            links += 1
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), link))
            assert target in keys, f"{page} links to {link}, which was not written"
    assert links >= 8


def test_data_docs_reject_non_result(tmp_path):
    store = open_store(f"file://{tmp_path}")
    with pytest.raises(ValueError, match="validation result 'drift' is not a GX validation result"):
        publish_data_docs({"drift": {"results": "nonsense"}}, store, "v/", run_name="r1")


def test_drift_result_is_json_serialisable():
    baseline = _baselines(_day(1))
    report = check_drift(drift_summary_from_rows(_day(2, ttl=128.0), baseline))
    json.dumps(report.outcome.result)
    json.dumps(report.outcome.failed)
