"""Hostile models, keys, file names and paths: each is rejected or made harmless.

Credentials are covered in ``test_storage_outage.py``, which runs the flow
against an S3 server with distinctive keys.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import keras
import numpy as np
import pytest

from models.artifacts import model_from_bytes, model_to_bytes
from objectstore import StorageError, open_store
from reports import CaptureEntry, render_report
from spark_jobs.captures import CaptureRef, capture_ref_for_key, labels_key_for
from spark_jobs.decoder import decode_to_table
from spark_jobs.decoder.drilldown import wireshark_info
from spark_jobs.extract_packets import extract_packets
from tests.reports.conftest import make_inputs

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARY_PACKAGES = ("flows", "spark_jobs", "models", "reports", "objectstore", "expectations")
CAPTURE_TOOLS = re.compile(r"\b(tshark|dumpcap|editcap|mergecap|capinfos)\b")
MARKUP_NAME = '<img src=x onerror="alert(1)">.pcap'


def test_lambda_layer_model_is_rejected_in_safe_mode():
    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda tensor: tensor * 2.0)(inputs)
    data = model_to_bytes(keras.Model(inputs, outputs))

    with pytest.raises(ValueError, match="(?i)lambda"):
        model_from_bytes(data)


def test_plain_model_loads_in_safe_mode():
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    sample = np.ones((1, 4), np.float32)

    loaded = model_from_bytes(model_to_bytes(model))

    np.testing.assert_allclose(loaded.predict(sample, verbose=0), model.predict(sample, verbose=0), rtol=1e-6)


@pytest.mark.parametrize("capture_key", ["../outside.pcap", "captures/../../outside.pcap", "/etc/outside.pcap"])
def test_capture_key_outside_root_is_rejected(tmp_path, capture_key):
    store = open_store(f"file://{tmp_path / 'store'}")

    with pytest.raises(StorageError, match="invalid object key"):
        capture_ref_for_key(store, capture_key)


def test_labels_key_stays_beside_its_capture():
    assert labels_key_for("captures/night/a.pcapng.gz") == "captures/night/a.labels.csv"
    assert labels_key_for("a.pcap") == "a.labels.csv"


def test_labels_key_outside_root_sets_capture_aside(tmp_path, spark, demo_sample):
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    store.put_file("captures/demo.pcapng", str(demo_sample / "demo.pcapng"))
    outside = tmp_path / "outside.labels.csv"
    outside.write_text("first_frame,last_frame,label,attack\n1,10,1,planted\n")
    ref = CaptureRef(capture_id="demo", key="captures/demo.pcapng", labels_key="../outside.labels.csv")

    [status] = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="escape")

    assert not status.decoded
    assert "invalid object key '../outside.labels.csv'" in status.error
    assert not status.labelled
    assert list(store.iter_keys("lake/")) == []


def test_markup_in_capture_name_is_escaped_in_report(tmp_path):
    capture = tmp_path / MARKUP_NAME
    capture.write_bytes(b"first_frame,last_frame\n")
    _table, summary = decode_to_table(str(capture), capture_id="hostile", name=f"captures/{MARKUP_NAME}")
    inputs = make_inputs(frames=200, windows=40)
    inputs.captures.append(CaptureEntry("hostile", f"captures/{MARKUP_NAME}", 0, "set aside", str(summary.error)))

    document = render_report(inputs)

    assert MARKUP_NAME in str(summary.error)
    assert "<img src=x" not in document
    assert 'onerror="alert(1)"' not in document
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.pcap" in document or "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.pcap" in document


def test_only_drilldown_runs_capture_tools():
    runners = set()
    for package in LIBRARY_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if ("subprocess" in text or "import pyshark" in text) and CAPTURE_TOOLS.search(text):
                runners.add(path.relative_to(REPO_ROOT).as_posix())

    assert runners == {"spark_jobs/decoder/drilldown.py"}


@pytest.fixture()
def recording_tshark(tmp_path, monkeypatch):
    """A ``tshark`` first on PATH that writes its arguments to a file, then runs the real tshark."""
    real = "/usr/bin/tshark"
    if not os.access(real, os.X_OK):
        pytest.skip(f"{real} is absent: install the Debian package tshark")
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "tshark-arguments.txt"
    wrapper = folder / "tshark"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{log}"\nexec {real} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return log


def test_tshark_reads_capture_by_absolute_path(recording_tshark, tmp_path, shared_cases, monkeypatch):
    # A capture whose relative name looks like a tshark option.
    capture = tmp_path / "-Vx.pcap"
    capture.write_bytes((shared_cases / "single-packet.pcap").read_bytes())
    monkeypatch.chdir(tmp_path)

    info = wireshark_info("./-Vx.pcap", [1])

    arguments = recording_tshark.read_text().splitlines()
    path_argument = arguments[arguments.index("-r") + 1]
    assert Path(path_argument).is_absolute()
    assert path_argument == str(capture.resolve())
    assert list(info) == [1]


def test_tshark_path_starting_with_dash_is_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-V").write_bytes(b"")

    with pytest.raises(ValueError, match="starts with '-'"):
        wireshark_info("-V", [1])

