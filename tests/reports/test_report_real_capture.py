"""A report built from a real capture, decoded here with tshark, renders every plot."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reports import CaptureEntry, render_report

CAPTURE_NAME = "benign-anyconnect-vpn-lan-mixed.pcap"
CAPTURE_FRAMES = 3001
TSHARK_FIELDS = [
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "eth.src",
    "ip.dst",
    "ipv6.dst",
    "eth.dst",
    "frame.len",
    "_ws.col.Protocol",
]


@pytest.fixture(scope="module")
def capture_path(shared_captures: Path) -> Path:
    path = shared_captures / CAPTURE_NAME
    if not path.is_file():
        pytest.skip(f"real capture {path} is absent from the shared captures folder")
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed; install the Debian package tshark to run this test")
    return path


@pytest.fixture(scope="module")
def real_packets(capture_path: Path) -> pd.DataFrame:
    """Decode the report's columns with tshark: IP addresses, else MAC addresses, as the packet table does."""
    command = ["tshark", "-n", "-r", str(capture_path), "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout

    rows = []
    for line in output.splitlines():
        epoch, ip_src, ipv6_src, eth_src, ip_dst, ipv6_dst, eth_dst, frame_len, protocol = line.split("\t")
        seconds, _, fraction = epoch.partition(".")
        rows.append(
            {
                "src_addr": ip_src or ipv6_src or eth_src or None,
                "dst_addr": ip_dst or ipv6_dst or eth_dst or None,
                "frame_len": int(frame_len),
                "timestamp_ns": int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9]),
                "protocol": protocol,
            }
        )
    return pd.DataFrame(rows)


def test_real_capture_report_has_every_plot(real_packets, report_builders):
    inputs = report_builders.make_inputs(frames=0, windows=120)
    inputs.packets = real_packets
    inputs.captures = [CaptureEntry("anyconnect", f"captures/{CAPTURE_NAME}", len(real_packets), "decoded", None)]

    report = report_builders.parse_report(render_report(inputs))

    assert len(real_packets) == CAPTURE_FRAMES
    assert f"{CAPTURE_FRAMES} frames from" in report.text
    for plot_id in ("ip-heatmap", "length-distribution", "packet-rate", "error-lstm", "confusion-conv1d"):
        figure = report.figures[plot_id]
        assert figure.image_src is not None, plot_id
        assert base64.b64decode(figure.image_src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n"), plot_id


def test_real_capture_heatmap_names_busiest_pair(real_packets, report_builders):
    inputs = report_builders.make_inputs(frames=0, windows=20)
    inputs.packets = real_packets
    pair_counts = real_packets.groupby(["src_addr", "dst_addr"]).size()
    source_top = real_packets["src_addr"].value_counts()
    destination_top = real_packets["dst_addr"].value_counts()

    report = report_builders.parse_report(render_report(inputs, top_addresses=5))

    # The busiest pair overall lies in the shown grid whenever both of its
    # addresses rank in their top five, which holds for this capture.
    source, destination = pair_counts.idxmax()
    assert source in source_top.index[:5]
    assert destination in destination_top.index[:5]
    expected = f"Busiest pair: {source} to {destination}, {int(pair_counts.max())} packets."
    assert expected in report.figures["ip-heatmap"].image_alt
    caption_median = float(report.figures["length-distribution"].caption.split("median ")[1].split(" ")[0])
    assert caption_median == pytest.approx(float(real_packets["frame_len"].median()), rel=1e-6)
