"""End-to-end runs of the ``score`` flow against champions trained once on the demo sample.

Real Prefect, Spark, TensorFlow, tshark and local storage; one retrain per module.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from flows import layout
from flows.retrain import retrain
from flows.score import CaptureNotDecodedError, MissingChampionError, ScoreSettings, score
from flows.settings import NetaeSettings
from models.threshold_checks import threshold_promise
from models.thresholds import Threshold
from reports.pseudonyms import Pseudonymizer
from tests.tshark_tools import needs_tshark, tshark_fields

pytestmark = pytest.mark.slow

SMALL_MODELS = dict(epochs=2, lstm_units=8, conv_filters=8, window_length=16, window_stride=8, batch_size=64)
SCAN_CAPTURE = "attack-nmap-syn-scan.pcap"
PSEUDONYM_KEY = "test-key-for-pseudonyms-0123456789"


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, demo_sample):
    """A local store whose champions were trained on the demo sample; yields its URL."""
    storage_url = f"file://{tmp_path_factory.mktemp('score') / 'data'}"
    settings = NetaeSettings(storage_url=storage_url, spark_master="local[2]", captures_prefix="captures/demo/", **SMALL_MODELS)
    store = settings.open_store()
    for path in demo_sample.iterdir():
        store.put_file(f"captures/demo/{path.name}", str(path))
    retrain(settings=settings)
    return storage_url


def _settings(storage_url: str, **overrides) -> ScoreSettings:
    return ScoreSettings(storage_url=storage_url, spark_master="local[2]", **overrides)


@pytest.fixture(scope="module")
def scan_summary(trained_store, shared_captures):
    """The summary of scoring an nmap SYN scan, a capture unlike the demo traffic."""
    return score(capture=str(shared_captures / SCAN_CAPTURE), settings=_settings(trained_store))


@needs_tshark
def test_markup_dns_name_only_escaped_in_report(trained_store, shared_cases):
    settings = _settings(trained_store)

    summary = score(capture=str(shared_cases / "markup-in-fields.pcap"), settings=settings)

    html = settings.open_store().get_bytes(summary["report"]).decode("utf-8")
    assert summary["capture"] == f"adhoc/captures/{summary['run_id']}/markup-in-fields.pcap"
    assert summary["report"] == f"reports/adhoc/{summary['run_id']}/report.html"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in html
    assert "<script>" not in html
    assert "alert(1)</script>" not in html
    assert "too few for one window" in html


def test_scan_capture_has_flagged_windows(scan_summary):
    assert scan_summary["frames"] > 100
    for kind in ("lstm", "conv1d"):
        assert scan_summary["windows"][kind] > 0
        assert 0 < scan_summary["flagged_windows"][kind] <= scan_summary["windows"][kind]
    assert scan_summary["exported_frames"] > 0
    assert scan_summary["top_flagged"][0]["features"]


@needs_tshark
def test_frame_and_host_scores_match_flags(trained_store, scan_summary, shared_captures):
    store = _settings(trained_store).open_store()
    scores_prefix = f"lake/adhoc/{scan_summary['run_id']}/scores/"
    flagged_in_any = set()
    # The packet table's address is the IP address, or the MAC address for a frame without IP.
    hosts_of_frame = {
        int(number): {ip_src or eth_src, ip_dst or eth_dst} - {""}
        for number, ip_src, ip_dst, eth_src, eth_dst in
        tshark_fields(shared_captures / SCAN_CAPTURE, "frame.number", "ip.src", "ip.dst", "eth.src", "eth.dst")
    }
    html = store.get_bytes(scan_summary["report"]).decode("utf-8")

    for kind in ("lstm", "conv1d"):
        frames = pd.read_parquet(io.BytesIO(store.get_bytes(scores_prefix + f"{kind}.frames.parquet")))
        hosts = pd.read_parquet(io.BytesIO(store.get_bytes(scores_prefix + f"{kind}.hosts.parquet")))
        threshold = scan_summary["thresholds"][kind]
        flagged = set(frames.loc[frames["flagged"], "frame_number"].astype(int))
        flagged_in_any |= flagged
        assert (frames["flagged"] == (frames["score"] > threshold)).all()
        assert frames["frame_number"].is_unique
        # A host is above the threshold exactly when it sent or received a flagged frame.
        involved = set().union(*(hosts_of_frame[number] for number in flagged))
        assert set(hosts.loc[hosts["flagged"], "address"]) == involved
        assert hosts["score"].is_monotonic_decreasing
        for address, group in hosts[hosts["flagged"]].groupby("address"):
            expected = sum(1 for number in flagged if address in hosts_of_frame[number])
            assert group["flagged_frames"].iloc[0] == expected, address
        top = hosts.iloc[0]
        assert frames.set_index("frame_number").loc[top["top_frame"], "score"] == top["score"]
        assert [host["address"] for host in scan_summary["top_hosts"][kind]] == hosts["address"].head(3).tolist()
        assert f"<td>{kind}</td><td><code>{top['address']}</code></td>" in html

    # The export and the display filter hold the frames of flagged windows: exactly the frames above a threshold.
    assert len(flagged_in_any) == scan_summary["exported_frames"]
    selected = tshark_fields(shared_captures / SCAN_CAPTURE, "frame.number", display=scan_summary["display_filter"])
    assert {int(row[0]) for row in selected} == flagged_in_any


@needs_tshark
def test_exported_pcapng_has_flagged_frames_with_comments(trained_store, scan_summary, tmp_path):
    store = _settings(trained_store).open_store()
    exported = tmp_path / "flagged.pcapng"
    exported.write_bytes(store.get_bytes(scan_summary["export"]))

    comments = [row[0] for row in tshark_fields(exported, "frame.comment")]

    assert len(comments) == scan_summary["exported_frames"]
    for comment in comments:
        for part in comment.split(","):
            match = re.fullmatch(r"netae (lstm|conv1d): window (\d+) score ([0-9.e+-]+) > threshold ([0-9.e+-]+)", part)
            assert match, part
            assert float(match.group(3)) > float(match.group(4))
            assert float(match.group(4)) == pytest.approx(scan_summary["thresholds"][match.group(1)], rel=1e-5)


@needs_tshark
def test_display_filter_selects_exported_frames_in_original(trained_store, scan_summary, shared_captures, tmp_path):
    store = _settings(trained_store).open_store()
    exported = tmp_path / "flagged.pcapng"
    exported.write_bytes(store.get_bytes(scan_summary["export"]))
    fields = ("frame.time_epoch", "frame.len", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport")

    selected = tshark_fields(shared_captures / SCAN_CAPTURE, *fields, display=scan_summary["display_filter"])

    assert len(selected) == scan_summary["exported_frames"]
    assert selected == tshark_fields(exported, *fields)


def test_report_and_champion_pointers_published(trained_store, scan_summary):
    store = _settings(trained_store).open_store()
    html = store.get_bytes(scan_summary["report"]).decode("utf-8")

    for plot in ("error-lstm", "error-conv1d", "ip-heatmap", "length-distribution", "packet-rate"):
        assert f'data-plot="{plot}"' in html
    assert scan_summary["display_filter"] in html
    assert 'id="host-summary"' in html
    assert 'id="pair-summary"' in html
    for kind in ("lstm", "conv1d"):
        assert store.exists(layout.champion_key(kind))
        assert store.exists(f"lake/adhoc/{scan_summary['run_id']}/scores/{kind}.parquet")


def test_report_notes_flagged_share_above_promise(trained_store, scan_summary):
    store = _settings(trained_store).open_store()
    html = store.get_bytes(scan_summary["report"]).decode("utf-8")

    for kind in ("lstm", "conv1d"):
        version = store.get_json(layout.champion_key(kind))["version"]
        threshold = Threshold.from_json(store.get_json(layout.model_prefix(kind, version) + "threshold.json"))
        share = scan_summary["flagged_windows"][kind] / scan_summary["windows"][kind]
        noted = f"The {kind} model flagged {scan_summary['flagged_windows'][kind]} of {scan_summary['windows'][kind]} windows" in html
        assert noted == (share > 2 * threshold_promise(threshold)), f"{kind}: share {share:.3f}"


def test_capture_key_in_store_is_scored_without_upload(trained_store):
    settings = _settings(trained_store)

    summary = score(capture="captures/demo/demo.pcapng", settings=settings)

    assert summary["capture"] == "captures/demo/demo.pcapng"
    assert not any(settings.open_store().iter_keys(f"adhoc/captures/{summary['run_id']}/"))
    for kind in ("lstm", "conv1d"):
        assert 0.0 <= summary["metrics"][kind]["recall"] <= 1.0
        assert summary["flagged_windows"][kind] < summary["windows"][kind]


@needs_tshark
def test_display_filter_selects_part_of_demo_capture(trained_store, demo_sample, tmp_path):
    settings = _settings(trained_store)
    summary = score(capture="captures/demo/demo.pcapng", settings=settings)
    assert summary["exported_frames"] > 0, "no demo window was flagged, so there is nothing to compare"
    exported = tmp_path / "flagged.pcapng"
    exported.write_bytes(settings.open_store().get_bytes(summary["export"]))
    fields = ("frame.time_epoch", "frame.len", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport")

    selected = tshark_fields(demo_sample / "demo.pcapng", *fields, display=summary["display_filter"])

    assert 0 < len(selected) < summary["frames"]
    assert len(selected) == summary["exported_frames"]
    assert selected == tshark_fields(exported, *fields)


def test_missing_champion_names_retrain(tmp_path, shared_cases):
    settings = _settings(f"file://{tmp_path / 'empty'}")

    with pytest.raises(MissingChampionError, match=r"no lstm champion at .*: run `netae retrain` \(or `netae demo`\) first"):
        score(capture=str(shared_cases / "single-packet.pcap"), settings=settings)

    assert not any(settings.open_store().iter_keys("captures/"))


def test_missing_capture_is_reported(trained_store, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"capture '.*absent\.pcap' is neither a key in file://.* nor a local file"):
        score(capture=str(tmp_path / "absent.pcap"), settings=_settings(trained_store))


def test_wrong_labels_path_uploads_nothing(trained_store, demo_sample, tmp_path):
    settings = _settings(trained_store)
    # Other tests of this module score into the same store.
    before = set(settings.open_store().iter_keys(""))

    with pytest.raises(FileNotFoundError, match=r"labels file '.*absent\.labels\.csv' is neither a key in file://.* nor a local file"):
        score(capture=str(demo_sample / "demo.pcapng"), labels=str(tmp_path / "absent.labels.csv"), settings=settings)

    assert set(settings.open_store().iter_keys("")) == before


def test_unreadable_capture_is_reported(trained_store, shared_cases):
    with pytest.raises(CaptureNotDecodedError, match=r"cannot score .*not-a-capture\.pcap: .*[Nn]ot a capture file"):
        score(capture=str(shared_cases / "not-a-capture.pcap"), settings=_settings(trained_store))


def test_local_labels_for_stored_capture_are_uploaded_apart(trained_store, demo_sample):
    settings = _settings(trained_store)
    store = settings.open_store()
    stored_labels = store.get_bytes("captures/demo/demo.labels.csv")

    summary = score(capture="captures/demo/demo.pcapng", labels=str(demo_sample / "demo.labels.csv"), settings=settings)

    assert store.exists(f"adhoc/captures/{summary['run_id']}/demo.labels.csv")
    assert store.get_bytes("captures/demo/demo.labels.csv") == stored_labels
    for kind in ("lstm", "conv1d"):
        assert 0.0 <= summary["metrics"][kind]["recall"] <= 1.0


def test_pseudonymize_without_key_is_rejected(monkeypatch):
    monkeypatch.delenv("NETAE_PSEUDONYM_KEY", raising=False)

    with pytest.raises(ValueError, match="pseudonymize is on but NETAE_PSEUDONYM_KEY is not set"):
        ScoreSettings(pseudonymize=True)


@needs_tshark
def test_cli_score_pseudonymizes_report(trained_store, shared_captures):
    environment = {**os.environ, "NETAE_PSEUDONYM_KEY": PSEUDONYM_KEY, "NETAE_SPARK_MASTER": "local[2]", "COLUMNS": "400"}
    command = [sys.executable, "-m", "flows.cli", "score", str(shared_captures / SCAN_CAPTURE),
               "--storage-url", trained_store, "--pseudonymize"]

    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=environment)

    assert result.returncode == 0, result.stderr[-3000:]
    report_line = next(line for line in result.stdout.splitlines() if line.startswith("report: "))
    html = open(report_line.removeprefix("report: file://"), encoding="utf-8").read()
    addresses = {row[0] for row in tshark_fields(shared_captures / SCAN_CAPTURE, "ip.src")} - {""}
    pseudonymizer = Pseudonymizer(PSEUDONYM_KEY)
    for address in addresses:
        assert re.search(rf"(?<![0-9.]){re.escape(address)}(?![0-9])", html) is None, address
        assert pseudonymizer.address(address) in html
    assert "display filter: frame.number in {" in result.stdout
    hosts_line = next(line for line in result.stdout.splitlines() if line.startswith("lstm highest-scoring hosts: "))
    assert any(pseudonymizer.address(address) in hosts_line for address in addresses)
    for address in addresses:
        assert re.search(rf"(?<![0-9.]){re.escape(address)}(?![0-9])", hosts_line) is None, address


def test_s3_storage_score_publishes_report(trained_store, s3_settings_env, demo_sample):
    # The champions trained on local storage are copied into the bucket, so the
    # S3 path is tested without a second retrain.
    local = _settings(trained_store).open_store()
    settings = ScoreSettings(spark_master="local[2]")
    bucket = settings.open_store()
    assert bucket.url.startswith("s3://")
    for key in local.iter_keys("models/"):
        bucket.put_bytes(key, local.get_bytes(key))

    summary = score(capture=str(demo_sample / "demo.pcapng"), settings=settings)

    html = bucket.get_bytes(summary["report"]).decode("utf-8")
    assert 'data-plot="error-lstm"' in html
    assert bucket.exists(summary["capture"])
    assert summary["exported_frames"] > 0
    assert bucket.get_bytes(summary["export"]).startswith(b"\x0a\x0d\x0d\x0a")
