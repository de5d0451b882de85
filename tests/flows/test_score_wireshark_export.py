"""The commented pcapng export and the display filter, checked with tshark as an analyst would open them."""

from __future__ import annotations

import gzip

import pytest

from flows.wireshark_export import CapturedFrame, display_filter, read_frames, write_pcapng
from spark_jobs.decoder.errors import CaptureError
from tests.tshark_tools import needs_tshark, tshark_fields


def test_display_filter_collapses_runs_into_ranges():
    assert display_filter([9, 3, 4, 5, 1, 7, 8]) == "frame.number in {1, 3..5, 7..9}"


def test_display_filter_of_one_frame():
    assert display_filter([42]) == "frame.number in {42}"


def test_display_filter_of_no_frame_is_rejected():
    with pytest.raises(ValueError, match="frame_numbers is empty"):
        display_filter([])


def test_read_frames_returns_requested_frames_in_order(demo_sample):
    frames = list(read_frames(demo_sample / "demo.pcapng", [50, 2, 7]))

    assert [frame.frame_number for frame in frames] == [2, 7, 50]
    assert all(frame.link_type == 1 for frame in frames)
    assert all(len(frame.data) <= frame.frame_len for frame in frames)


def test_read_frames_rejects_csv_export(shared_cases):
    with pytest.raises(CaptureError, match="wireshark-export.csv.*A Wireshark CSV export contains no frame bytes"):
        list(read_frames(shared_cases / "wireshark-export.csv", [1]))


@needs_tshark
def test_exported_frames_open_with_comments(tmp_path, demo_sample):
    wanted = [3, 4, 5, 120, 121]
    comments = {3: ["netae lstm: window 0 score 0.5 > threshold 0.05"], 120: ["netae lstm: a", "netae conv1d: b"]}
    out = tmp_path / "flagged.pcapng"
    with out.open("wb") as stream:
        written = write_pcapng(read_frames(demo_sample / "demo.pcapng", wanted), comments, stream)

    rows = tshark_fields(out, "frame.comment")

    assert written == 5
    assert len(rows) == 5
    assert rows[0] == ["netae lstm: window 0 score 0.5 > threshold 0.05"]
    assert rows[3] == ["netae lstm: a,netae conv1d: b"]
    assert [row for index, row in enumerate(rows) if index not in (0, 3)] == [[""], [""], [""]]


@needs_tshark
def test_exported_frames_keep_bytes_and_nanosecond_times(tmp_path, demo_sample):
    wanted = [1, 2, 3, 50, 51]
    out = tmp_path / "flagged.pcapng"
    with out.open("wb") as stream:
        write_pcapng(read_frames(demo_sample / "demo.pcapng", wanted), {}, stream)
    fields = ("frame.time_epoch", "frame.len", "frame.cap_len", "ip.src", "ip.dst", "tcp.srcport")

    exported = tshark_fields(out, *fields)
    original = tshark_fields(demo_sample / "demo.pcapng", *fields, display=display_filter(wanted))

    assert exported == original


@needs_tshark
def test_frames_of_two_link_types_get_two_interfaces(tmp_path, shared_cases):
    out = tmp_path / "flagged.pcapng"
    with out.open("wb") as stream:
        write_pcapng(read_frames(shared_cases / "two-link-types.pcapng", [1, 2, 3]), {2: ["cooked"]}, stream)

    rows = tshark_fields(out, "frame.interface_id", "frame.encap_type", "ip.src", "frame.comment")

    assert [row[0] for row in rows] == ["0", "1", "0"]
    assert rows[1][2:] == ["192.0.2.30", "cooked"]


@needs_tshark
def test_gzip_capture_exports_like_plain_one(tmp_path, demo_sample):
    compressed = tmp_path / "demo.pcapng.gz"
    compressed.write_bytes(gzip.compress((demo_sample / "demo.pcapng").read_bytes()))
    plain, packed = tmp_path / "plain.pcapng", tmp_path / "packed.pcapng"
    for source, out in ((demo_sample / "demo.pcapng", plain), (compressed, packed)):
        with out.open("wb") as stream:
            write_pcapng(read_frames(source, [10, 11, 400]), {}, stream)

    assert plain.read_bytes() == packed.read_bytes()


def test_long_comment_is_cut_to_option_size(tmp_path):
    frame = CapturedFrame(frame_number=1, link_type=1, timestamp_ns=1_733_300_000_000_000_000, frame_len=60, data=b"\x00" * 60)
    out = tmp_path / "long.pcapng"
    with out.open("wb") as stream:
        write_pcapng([frame], {1: ["x" * 70_000]}, stream)

    data = out.read_bytes()
    assert data.count(b"x") == 0xFFFF
    assert len(data) % 4 == 0
