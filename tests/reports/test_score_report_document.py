"""The ad hoc score report rendered from seeded synthetic inputs, without Spark or TensorFlow.

``make_score_inputs`` is also used by the pseudonym and browser tests.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from reports.inputs import ModelSection
from reports.score_inputs import FlaggedWindow, ScoreReportInputs
from reports.score_report import host_rows, pair_rows, render_score_report

START_NS = 1_733_299_200 * 1_000_000_000  # 2024-12-04T08:00:00Z
FRAME_GAP_NS = 10_000_000
WINDOW_LENGTH = 8
WINDOW_STRIDE = 4
MARKUP_INFO = "Standard query 0x0000 A <script>alert(1)</script>.example from 192.0.2.10"
DISPLAY_FILTER = "frame.number in {1..8, 41..48}"
SCORE_PLOTS = ("error-lstm", "error-conv1d", "ip-heatmap", "length-distribution", "packet-rate")


def make_score_inputs(frames: int = 200, seed: int = 5) -> ScoreReportInputs:
    """Build a scored capture of ``frames`` frames in file order, with two flagged windows per model."""
    rng = np.random.default_rng(seed)
    hosts = np.array(["192.0.2.10", "192.0.2.20", "198.51.100.7", "2001:db8::5", "02:00:00:00:00:05"])
    numbers = np.arange(1, frames + 1, dtype=np.int64)
    packets = pd.DataFrame(
        {
            "frame_number": numbers,
            "timestamp_ns": START_NS + (numbers - 1) * FRAME_GAP_NS,
            "src_addr": rng.choice(hosts, size=frames, p=[0.5, 0.2, 0.1, 0.1, 0.1]),
            "dst_addr": rng.choice(hosts, size=frames, p=[0.1, 0.3, 0.4, 0.1, 0.1]),
            "protocol": rng.choice(["TCP", "DNS", "ARP"], size=frames),
            "frame_len": rng.integers(60, 1515, size=frames).astype(np.int32),
        }
    )

    windows = max(0, (frames - WINDOW_LENGTH) // WINDOW_STRIDE + 1)
    planted = [index for index in (0, 10) if index < windows]
    models, flagged = [], []
    for kind, seed_offset in (("lstm", 0), ("conv1d", 1)):
        scores = np.random.default_rng(seed + seed_offset).lognormal(np.log(0.01), 0.2, size=windows)
        scores[planted] = [0.5, 0.3][: len(planted)]
        threshold = 0.05
        models.append(
            ModelSection(
                kind=kind, version="20241204T080000Z-abc123", threshold=threshold, threshold_method="mean_k_std",
                threshold_params={"k": 3.0, "mean": 0.01, "std": 0.013}, window_start_ns=START_NS + np.arange(windows) * WINDOW_STRIDE * FRAME_GAP_NS,
                window_scores=scores, window_labels=None, metrics={"flagged_share": float(np.mean(scores > threshold)) if windows else 0.0},
                confusion=None, training_history=None,
            )
        )
        for index in planted:
            first = index * WINDOW_STRIDE
            flagged.append(
                FlaggedWindow(
                    kind=kind, window_index=index, score=float(scores[index]), threshold=threshold,
                    start_ns=int(packets["timestamp_ns"].iloc[first]),
                    end_ns=int(packets["timestamp_ns"].iloc[first + WINDOW_LENGTH - 1]),
                    frame_numbers=numbers[first:first + WINDOW_LENGTH].tolist(),
                    top_features=[("dst_port", 0.91), ("frame_len", 0.4), ("ttl", 0.1)],
                )
            )

    listed = sorted({number for window in flagged for number in window.frame_numbers})
    frame_table = packets[packets["frame_number"].isin(listed)].reset_index(drop=True)
    return ScoreReportInputs(
        title="netae score: <b>odd name</b>.pcap",
        run_id="20241204T090000Z-def456",
        created_utc=datetime(2024, 12, 4, 9, 0, tzinfo=timezone.utc),
        capture_key="captures/adhoc/20241204T090000Z-def456/odd.pcap",
        capture_frames=frames,
        window_length=WINDOW_LENGTH,
        window_stride=WINDOW_STRIDE,
        packets=packets.drop(columns=["frame_number"]),
        models=models,
        flagged=flagged,
        frames=frame_table,
        frame_info={number: f"frame {number} info" for number in listed} | {3: MARKUP_INFO},
        display_filter=DISPLAY_FILTER,
        export_location="file:///srv/netae/reports/adhoc/20241204T090000Z-def456/flagged.pcapng",
        exported_frames=len(listed),
        links={"scores": "file:///srv/netae/lake/adhoc/20241204T090000Z-def456/scores/"},
    )


@pytest.fixture(scope="module")
def document() -> str:
    return render_score_report(make_score_inputs())


def test_every_plot_has_an_image(document, report_builders):
    parsed = report_builders.parse_report(document)

    for plot_id in SCORE_PLOTS:
        assert plot_id in parsed.figures, plot_id
        assert parsed.figures[plot_id].image_src.startswith("data:image/png;base64,")


def test_document_has_no_script_and_no_remote_url(document, report_builders):
    parsed = report_builders.parse_report(document)

    assert "script" not in parsed.tags
    assert all(url.startswith("data:") for url in parsed.url_attributes)


def test_markup_in_info_column_is_escaped(document, report_builders):
    assert "<script>" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in document
    assert MARKUP_INFO in report_builders.parse_report(document).text


def test_markup_in_title_is_escaped(document):
    assert "<b>odd name</b>" not in document
    assert "&lt;b&gt;odd name&lt;/b&gt;" in document


def test_flagged_windows_listed_with_features_and_frames(document):
    for kind in ("lstm", "conv1d"):
        for index in (0, 10):
            assert f'data-window="{kind}-{index}"' in document
            assert f'data-window-frames="{kind}-{index}"' in document
    assert "dst_port (0.91)" in document
    assert "41-48 (8 frames)" in document


def test_display_filter_and_export_location_shown(document):
    assert f'<pre class="filter" id="display-filter">{DISPLAY_FILTER}</pre>' in document
    assert "reports/adhoc/20241204T090000Z-def456/flagged.pcapng" in document


def test_host_summary_counts_match_packets():
    inputs = make_score_inputs()
    rows = {row.address: row for row in host_rows(inputs.packets, {1, 2, 3}, inputs.frames)}

    sent = inputs.packets["src_addr"].value_counts()
    received = inputs.packets["dst_addr"].value_counts()
    for address, row in rows.items():
        assert row.frames_sent == sent.get(address, 0)
        assert row.frames_received == received.get(address, 0)
        assert row.bytes_sent == int(inputs.packets.loc[inputs.packets["src_addr"] == address, "frame_len"].sum())
    first_three = inputs.frames[inputs.frames["frame_number"].isin([1, 2, 3])]
    expected_flagged = int((first_three["src_addr"] == "192.0.2.10").sum() + (first_three["dst_addr"] == "192.0.2.10").sum())
    assert rows["192.0.2.10"].flagged_frames == expected_flagged


def test_pair_summary_sorted_by_frames():
    inputs = make_score_inputs()
    rows = pair_rows(inputs.packets)

    counts = inputs.packets.groupby(["src_addr", "dst_addr"]).size()
    assert rows[0].frames == counts.max()
    assert [row.frames for row in rows] == sorted((row.frames for row in rows), reverse=True)
    assert sum(row.frames for row in rows) == pytest.approx(counts.sort_values(ascending=False).head(len(rows)).sum(), abs=0)


def test_capture_without_windows_lists_its_frames():
    inputs = make_score_inputs(frames=5)
    inputs.flagged = []
    inputs.frames = inputs.packets.assign(frame_number=np.arange(1, 6))
    inputs.frame_info = {1: MARKUP_INFO}
    inputs.display_filter = None
    inputs.export_location = None
    inputs.notes = ["The capture has 5 frames, fewer than one window of 8, so no window was scored."]

    document = render_score_report(inputs)

    assert "No window is above a champion's threshold." in document
    assert "fewer than one window of 8" in document
    assert "Frames of the capture" in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "No frame was flagged, so there is no display filter." in document


def test_naive_creation_time_is_rejected():
    inputs = make_score_inputs()
    inputs.created_utc = datetime(2024, 12, 4, 9, 0)

    with pytest.raises(ValueError, match="created_utc must be timezone-aware"):
        render_score_report(inputs)


def test_frames_without_required_column_are_rejected():
    inputs = make_score_inputs()
    inputs.frames = inputs.frames.drop(columns=["protocol"])

    with pytest.raises(ValueError, match=r"frames is missing column\(s\) \['protocol'\]"):
        render_score_report(inputs)
