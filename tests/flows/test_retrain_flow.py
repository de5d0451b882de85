"""End-to-end runs of the ``retrain`` flow: real Prefect, Spark, TensorFlow and storage."""

from __future__ import annotations

import io
import re
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from flows import layout
from flows.retrain import NoUsableCaptureError, retrain
from flows.settings import NetaeSettings
from models.thresholds import fit_threshold

pytestmark = pytest.mark.slow

SMALL_MODELS = dict(epochs=2, lstm_units=8, conv_filters=8, window_length=16, window_stride=8, batch_size=64)


def _settings(storage_url: str, **overrides) -> NetaeSettings:
    return NetaeSettings(storage_url=storage_url, spark_master="local[2]", **{**SMALL_MODELS, **overrides})


def _assert_run_published(store, run_id: str) -> str:
    """Check every artifact of a run exists; return the report HTML."""
    keys = set(store.iter_keys())
    assert any(re.fullmatch(rf"lake/packets/capture_id=[^/]+/part-{run_id}-\d+-\d+\.parquet", key) for key in keys)
    for kind in ("lstm", "conv1d"):
        for name in layout.MODEL_FILES + ("manifest.json",):
            assert layout.model_prefix(kind, run_id) + name in keys, f"{kind} {name} missing"
        assert store.get_json(layout.champion_key(kind))["version"] == run_id
        threshold = store.get_json(layout.model_prefix(kind, run_id) + "threshold.json")
        assert threshold["method"] == "mean_k_std"
        assert threshold["value"] > 0
        calibration = pd.read_parquet(io.BytesIO(store.get_bytes(layout.model_prefix(kind, run_id) + layout.CALIBRATION_FILE)))
        assert set(calibration["split"]) == {"validation"}
        assert not (calibration["label"] == 1).any()
        refit = fit_threshold("mean_k_std", calibration["score"].to_numpy(), k=threshold["params"]["k"])
        assert refit.value == threshold["value"]
    expected_validations = [layout.validation_key(run_id, suite) for suite in ("drift", "packets", "windows")]
    expected_validations.append(layout.data_docs_index_key(run_id))
    for key in expected_validations:
        assert key in keys
    manifest = store.get_json(layout.run_manifest_key(run_id))
    assert manifest["validations"] == sorted(expected_validations)
    return store.get_bytes(layout.report_key(run_id)).decode("utf-8")


def test_demo_sample_run_publishes_every_artifact(tmp_path, demo_sample):
    settings = _settings(f"file://{tmp_path / 'data'}", captures_prefix="captures/demo/")
    store = settings.open_store()
    for path in demo_sample.iterdir():
        store.put_file(f"captures/demo/{path.name}", str(path))

    manifest = retrain(settings=settings)

    html = _assert_run_published(store, manifest["run_id"])
    for plot in ("confusion-lstm", "confusion-conv1d", "ip-heatmap", "length-distribution", "error-lstm", "error-conv1d"):
        assert f'data-plot="{plot}"' in html
    assert "oracle F1 (threshold chosen with labels)" in html
    # The first run has no champion to compare with, so both models are promoted.
    assert html.count('<td class="number">yes</td>') == 2
    for kind in ("lstm", "conv1d"):
        metrics = manifest["metrics"][kind]
        assert metrics["support_anomalous"] > 0
        assert 0.0 <= metrics["recall"] <= 1.0
        assert metrics["oracle"]["f1"] >= metrics["f1"]
        check = metrics["false_alarms"]
        assert check["method"] == "mean_k_std"
        assert check["promised_rate"] == pytest.approx(1 / (1 + settings.threshold_k**2))
        assert check["same_period"]["windows"] > 0
        assert check["later_period"]["windows"] > 0
        assert check["later_period"]["rate"] is not None
        assert 0.0 <= check["later_period"]["above_calibration_p90"] <= 1.0
        assert 0.0 < check["later_period"]["above_calibration_p90_expected"] <= 0.1
    assert html.count("data-false-alarms=") == 2
    assert html.count("of later windows above the validation scores&#39; 90th percentile") == 2
    part = next(key for key in store.iter_keys("lake/packets/") if key.endswith(".parquet"))
    table = pq.read_table(store.root / part)
    assert table.column("label").null_count == 0
    assert sum(table.column("label").to_pylist()) > 0


def test_shared_capture_run_lists_both_models(tmp_path, shared_captures):
    settings = _settings(f"file://{tmp_path / 'data'}")
    store = settings.open_store()
    store.put_file("captures/benign-http-web-bro-org.pcap", str(shared_captures / "benign-http-web-bro-org.pcap"))

    manifest = retrain(settings=settings)

    html = _assert_run_published(store, manifest["run_id"])
    assert "lstm" in html
    assert "conv1d" in html
    assert manifest["set_aside"] == []
    for kind in ("lstm", "conv1d"):
        assert 0.0 <= manifest["metrics"][kind]["flagged_share"] <= 1.0
        assert "recall" not in manifest["metrics"][kind]


def test_unreadable_capture_set_aside(tmp_path, demo_sample, shared_cases):
    settings = _settings(f"file://{tmp_path / 'data'}")
    store = settings.open_store()
    store.put_file("captures/good.pcapng", str(demo_sample / "demo.pcapng"))
    store.put_file("captures/not-a-capture.pcap", str(shared_cases / "not-a-capture.pcap"))

    manifest = retrain(settings=settings)

    _assert_run_published(store, manifest["run_id"])
    assert [item["key"] for item in manifest["set_aside"]] == ["captures/not-a-capture.pcap"]
    reason = manifest["set_aside"][0]["reason"]
    assert "not-a-capture.pcap" in reason
    assert "not a capture" in reason.lower()
    decoded = [item["key"] for item in manifest["captures"] if item["decoded"]]
    assert decoded == ["captures/good.pcapng"]
    html = store.get_bytes(layout.report_key(manifest["run_id"])).decode("utf-8")
    assert "set aside" in html
    assert "not-a-capture.pcap" in html


def test_run_without_readable_capture_fails_and_keeps_champion(tmp_path, demo_sample, shared_cases):
    settings = _settings(f"file://{tmp_path / 'data'}")
    store = settings.open_store()
    store.put_json(layout.champion_key("lstm"), {"version": "earlier"})
    store.put_file("captures/empty.pcap", str(shared_cases / "empty.pcap"))

    with pytest.raises(NoUsableCaptureError, match="empty.pcap"):
        retrain(settings=settings)

    assert store.get_json(layout.champion_key("lstm")) == {"version": "earlier"}


def test_s3_storage_run_publishes_to_bucket(s3_settings_env, demo_sample):
    settings = NetaeSettings(spark_master="local[2]", captures_prefix="captures/demo/", **SMALL_MODELS)
    store = settings.open_store()
    assert store.url.startswith("s3://")
    for path in demo_sample.iterdir():
        store.put_file(f"captures/demo/{path.name}", str(path))

    manifest = retrain(settings=settings)

    _assert_run_published(store, manifest["run_id"])
    assert manifest["captures"][0]["etag"]
