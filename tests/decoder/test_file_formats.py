"""File formats from hand-built bytes: pcap byte orders and resolutions, pcapng
sections, interfaces and timestamp resolutions, gzip, streams and damage."""

from __future__ import annotations

import gzip
import io
import struct

import pytest

from spark_jobs.decoder import CaptureDecoder, CaptureError, decode_to_table
from tests.decoder.frame_builders import (
    T0,
    enhanced_packet,
    interface_description,
    ipv4,
    obsolete_packet,
    pcap_file,
    section_header,
    simple_packet,
    udp,
    udp_frame,
)

T0_NS = T0 * 1_000_000_000


def decode_bytes(data: bytes, **kwargs):
    table, summary = decode_to_table(io.BytesIO(data), capture_id="bytes", **kwargs)
    return table.to_pylist(), summary


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_pcap_microsecond_either_byte_order(byte_order):
    data = pcap_file([(T0, 250_000, udp_frame()), (T0 + 1, 1, udp_frame())], byte_order=byte_order)
    rows, summary = decode_bytes(data)
    assert summary.format == "pcap"
    assert [row["timestamp_ns"] for row in rows] == [T0_NS + 250_000_000, T0_NS + 1_000_001_000]
    assert rows[1]["inter_arrival_ns"] == 750_001_000
    assert (rows[0]["src_addr"], rows[0]["dst_port"], rows[0]["protocol"]) == ("192.0.2.1", 53, "DNS")


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_pcap_nanosecond_either_byte_order(byte_order):
    data = pcap_file([(T0, 999_999_999, udp_frame()), (T0 + 1, 0, udp_frame())],
                     byte_order=byte_order, nanosecond=True)
    rows, _ = decode_bytes(data)
    assert [row["timestamp_ns"] for row in rows] == [T0_NS + 999_999_999, T0_NS + 1_000_000_000]
    assert rows[1]["inter_arrival_ns"] == 1


def test_pcapng_two_sections_of_different_byte_order():
    raw_ip_packet = ipv4("198.51.100.1", "198.51.100.2", 17, udp(5000, 123, b"x" * 48))
    data = (
        section_header("<")
        + interface_description("<", 1)                                  # interface 0: Ethernet, µs
        + enhanced_packet("<", 0, T0 * 1_000_000 + 5, udp_frame())
        + section_header(">")
        + interface_description(">", 101, tsresol=9)                     # interface 1: raw IP, ns
        + enhanced_packet(">", 0, T0_NS + 7, raw_ip_packet)
    )
    rows, summary = decode_bytes(data)
    assert summary.format == "pcapng"
    assert summary.error is None
    assert [row["interface_id"] for row in rows] == [0, 1]
    assert [row["link_type"] for row in rows] == [1, 101]
    assert [row["timestamp_ns"] for row in rows] == [T0_NS + 5_000, T0_NS + 7]
    assert (rows[1]["src_addr"], rows[1]["dst_port"], rows[1]["protocol"]) == ("198.51.100.1", 123, "NTP")


@pytest.mark.parametrize(
    ("tsresol", "ticks", "expected_ns"),
    [
        (None, T0 * 1_000_000 + 1, T0_NS + 1_000),            # default 10^-6
        (3, T0 * 1_000 + 1, T0_NS + 1_000_000),               # 10^-3
        (9, T0_NS + 1, T0_NS + 1),                            # 10^-9
        (0x80 | 20, (T0 << 20) | (1 << 19), T0_NS + 500_000_000),  # 2^-20: half a second
        (0x80 | 10, (T0 << 10) | 1, T0_NS + 976_562),         # 2^-10: 976562.5 ns, rounded to even
    ],
)
def test_pcapng_if_tsresol(tsresol, ticks, expected_ns):
    data = (
        section_header("<")
        + interface_description("<", 1, tsresol=tsresol)
        + enhanced_packet("<", 0, ticks, udp_frame())
    )
    rows, _ = decode_bytes(data)
    assert rows[0]["timestamp_ns"] == expected_ns


def test_pcapng_if_tsoffset_adds_seconds():
    data = (
        section_header("<")
        + interface_description("<", 1, tsoffset_s=T0)
        + enhanced_packet("<", 0, 2_000_000, udp_frame())
    )
    rows, _ = decode_bytes(data)
    assert rows[0]["timestamp_ns"] == T0_NS + 2_000_000_000


def test_pcapng_simple_and_obsolete_packet_blocks():
    data = (
        section_header(">")
        + interface_description(">", 1)
        + obsolete_packet(">", 0, T0 * 1_000_000, udp_frame(1111, 53))
        + simple_packet(">", udp_frame(2222, 123))
        + enhanced_packet(">", 0, T0 * 1_000_000 + 3, udp_frame(3333, 5353))
    )
    rows, summary = decode_bytes(data)
    assert summary.error is None
    assert [row["src_port"] for row in rows] == [1111, 2222, 3333]
    assert [row["protocol"] for row in rows] == ["DNS", "NTP", "MDNS"]
    # A Simple Packet Block has no timestamp: it is stored as the epoch.
    assert [row["timestamp_ns"] for row in rows] == [T0_NS, 0, T0_NS + 3_000]
    assert rows[2]["timestamp_backwards"] is False
    assert rows[1]["inter_arrival_ns"] == 0


def test_pcapng_unaligned_block_length_stops():
    good = section_header("<") + interface_description("<", 1) + enhanced_packet("<", 0, 1, udp_frame())
    bad = bytearray(enhanced_packet("<", 0, 2, udp_frame()))
    bad[4:8] = struct.pack("<I", 1_000_002)   # total length: not a multiple of 4
    rows, summary = decode_bytes(good + bytes(bad) + enhanced_packet("<", 0, 3, udp_frame()))
    assert len(rows) == 1
    error = summary.error
    assert isinstance(error, CaptureError)
    assert (error.frame_number, error.byte_offset) == (2, len(good))
    assert "1000002" in str(error)


def test_pcapng_caplen_beyond_block_stops():
    good = section_header("<") + interface_description("<", 1) + enhanced_packet("<", 0, 1, udp_frame())
    bad = bytearray(enhanced_packet("<", 0, 2, udp_frame()))
    bad[20:24] = struct.pack("<I", 5000)      # captured length larger than the block
    rows, summary = decode_bytes(good + bytes(bad))
    assert len(rows) == 1
    assert (summary.error.frame_number, summary.error.byte_offset) == (2, len(good))


def test_pcapng_truncated_inside_block_keeps_frames():
    data = section_header("<") + interface_description("<", 1) + enhanced_packet("<", 0, 1, udp_frame())
    rows, summary = decode_bytes(data + enhanced_packet("<", 0, 2, udp_frame())[:30])
    assert len(rows) == 1
    assert summary.truncated is True
    assert summary.error is None


def test_pcap_caplen_above_snaplen_stops():
    data = pcap_file([(T0, 0, udp_frame())], snaplen=96)
    damaged = data + struct.pack("<IIII", T0, 0, 20_000_000, 60)  # caplen 20 MB, snaplen 96
    rows, summary = decode_bytes(damaged)
    assert len(rows) == 1
    assert (summary.error.frame_number, summary.error.byte_offset) == (2, len(data))


def test_gzip_stream_cut_short_keeps_frames():
    frames = [(T0 + i, 0, udp_frame()) for i in range(50)]
    compressed = gzip.compress(pcap_file(frames))
    rows, summary = decode_bytes(compressed[: len(compressed) - 8])
    assert summary.compressed is True
    assert summary.truncated is True
    assert 0 < len(rows) <= 50
    assert summary.error is None


def test_file_object_without_peek_is_accepted():
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._inner.read(size)

    data = gzip.compress(pcap_file([(T0, 0, udp_frame())]))
    decoder = CaptureDecoder(ReadOnly(data), capture_id="stream")
    rows = [row for batch in decoder.batches() for row in batch.to_pylist()]
    assert len(rows) == 1
    assert decoder.summary.source_name == "<stream>"


def test_continuation_of_a_larger_capture():
    data = pcap_file([(T0 + 10, 0, udp_frame()), (T0 + 11, 0, udp_frame())])
    decoder = CaptureDecoder(io.BytesIO(data), capture_id="part", first_frame_number=101,
                             previous_timestamp_ns=T0_NS + 9_000_000_000)
    rows = [row for batch in decoder.batches() for row in batch.to_pylist()]
    assert [row["frame_number"] for row in rows] == [101, 102]
    assert [row["inter_arrival_ns"] for row in rows] == [1_000_000_000, 1_000_000_000]


def test_missing_path_raises_oserror(tmp_path):
    decoder = CaptureDecoder(tmp_path / "absent.pcap", capture_id="x")
    with pytest.raises(FileNotFoundError):
        list(decoder.batches())


def test_invalid_batch_frames_rejected():
    with pytest.raises(ValueError, match="batch_frames must be at least 1, got 0"):
        CaptureDecoder(io.BytesIO(b""), capture_id="x", batch_frames=0)


def test_capture_error_survives_pickling():
    import pickle

    error = CaptureError("a.pcap", "Bad.", frame_number=3, byte_offset=40, action="Fix it.")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.frame_number, copy.byte_offset, str(copy)) == (
        "a.pcap", 3, 40, "a.pcap, frame 3, byte offset 40: Bad. Fix it.")
