"""Nightly runs over the same captures: only new or changed captures are decoded.

Real ``retrain`` flow runs (Prefect, Spark, TensorFlow) on a local store.
"""

from __future__ import annotations

import pytest

from flows import layout
from flows.ledger import CONSUMED, SET_ASIDE, Ledger
from flows.retrain import NoUsableCaptureError, retrain
from flows.settings import NetaeSettings
from spark_jobs.captures import capture_id_for_key
from spark_jobs.extract_packets import MANIFEST_NAME, partition_prefix
from tests.decoder.frame_builders import T0, pcap_file, udp_frame

pytestmark = pytest.mark.slow

SMALL_MODELS = dict(epochs=2, lstm_units=8, conv_filters=8, window_length=16, window_stride=8, batch_size=64)


def _settings(tmp_path, **overrides) -> NetaeSettings:
    values = {**SMALL_MODELS, **overrides}
    return NetaeSettings(storage_url=f"file://{tmp_path / 'data'}", spark_master="local[2]", **values)


def _udp_capture(frames: int, payload_bytes: int) -> bytes:
    """A classic pcap of ``frames`` UDP frames, ten per second, from 50 source ports."""
    records = [
        (T0 + index // 10, (index % 10) * 100_000, udp_frame(src_port=1024 + index % 50, payload=bytes(payload_bytes)))
        for index in range(frames)
    ]
    return pcap_file(records)


def _partition_run_id(store, key: str) -> str:
    """Return the run that wrote the lake partition of the capture at ``key``."""
    manifest = store.get_json(partition_prefix(layout.PACKETS_PREFIX, capture_id_for_key(key)) + MANIFEST_NAME)
    return manifest["run_id"]


def test_rerun_skips_and_replacement_decodes_alone(tmp_path, demo_sample):
    settings = _settings(tmp_path)
    store = settings.open_store()
    store.put_file("captures/demo.pcapng", str(demo_sample / "demo.pcapng"))
    store.put_file("captures/demo.labels.csv", str(demo_sample / "demo.labels.csv"))
    store.put_bytes("captures/udp.pcap", _udp_capture(600, payload_bytes=4))

    first = retrain(settings=settings)
    second = retrain(settings=settings)
    store.put_bytes("captures/udp.pcap", _udp_capture(600, payload_bytes=12))
    third = retrain(settings=settings)

    assert [item["key"] for item in first["captures"]] == ["captures/demo.pcapng", "captures/udp.pcap"]
    assert first["history"] == []

    assert "no new or changed capture" in second["skipped"]
    assert second["unchanged"] == 2
    assert second["captures"] == []
    assert not store.exists(layout.run_manifest_key(second["run_id"]))

    assert [item["key"] for item in third["captures"]] == ["captures/udp.pcap"]
    assert [item["key"] for item in third["history"]] == ["captures/demo.pcapng"]
    assert _partition_run_id(store, "captures/demo.pcapng") == first["run_id"]
    assert _partition_run_id(store, "captures/udp.pcap") == third["run_id"]
    for kind in ("lstm", "conv1d"):
        assert store.get_json(layout.champion_key(kind))["version"] == third["run_id"]

    entries = Ledger.load(store).entries
    assert entries["captures/udp.pcap"].run_id == third["run_id"]
    assert entries["captures/udp.pcap"].etag == store.stat("captures/udp.pcap").etag
    assert entries["captures/demo.pcapng"].run_id == first["run_id"]
    assert entries["captures/demo.pcapng"].labels_etag == store.stat("captures/demo.labels.csv").etag
    assert {entry.state for entry in entries.values()} == {CONSUMED}


def test_failed_run_resumes_without_decoding(tmp_path):
    store = _settings(tmp_path).open_store()
    store.put_bytes("captures/udp.pcap", _udp_capture(600, payload_bytes=4))

    # Windows longer than every split fail the run after decoding, before publishing.
    with pytest.raises(ValueError, match="no windows"):
        retrain(settings=_settings(tmp_path, window_length=1024), run_id="failed-run")
    resumed = retrain(settings=_settings(tmp_path))

    assert [item["key"] for item in resumed["captures"]] == ["captures/udp.pcap"]
    assert resumed["captures"][0]["decoded"] is True
    assert _partition_run_id(store, "captures/udp.pcap") == "failed-run"
    assert Ledger.load(store).entries["captures/udp.pcap"].state == CONSUMED
    assert store.exists(layout.run_manifest_key(resumed["run_id"]))


def test_undecodable_capture_set_aside_once(tmp_path):
    settings = _settings(tmp_path)
    store = settings.open_store()
    store.put_bytes("captures/notes.pcap", b"meeting notes, saved with the wrong extension\n")

    with pytest.raises(NoUsableCaptureError, match=r"captures/notes\.pcap, byte offset 0: .*set aside in .*runs/ledger\.json"):
        retrain(settings=settings)
    entry = Ledger.load(store).entries["captures/notes.pcap"]
    second = retrain(settings=settings)

    assert entry.state == SET_ASIDE
    assert "no new or changed capture" in second["skipped"]
    assert second["unchanged"] == 1
    assert not any(store.iter_keys("models/"))
