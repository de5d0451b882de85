"""Inputs that the decoder fuzzer (``bench/fuzz_decoder.py``) found crashing, rebuilt by hand.

Before the fix, each made ``CaptureDecoder.batches()`` raise or break the
frame numbering. Each must now end in a ``CaptureError`` that names the file,
and the frames before the fault are kept.
"""

from __future__ import annotations

import io
import struct

import pytest

from spark_jobs.decoder import CaptureError, decode_to_table

FILE_NAME = "finding.pcapng"

CSV_HEADER = b'"No.","Time","Source","Destination","Protocol","Length","Info"\n'
CSV_ROW = '"{number}","{time}","192.0.2.10","198.51.100.20","TCP","{length}","40000 \u2192 443 [SYN] Seq=0 Win=64240 Len=0"\n'


def _csv(*rows: tuple[str, str, str]) -> bytes:
    """A Wireshark CSV export with one line per ``(No., Time, Length)``."""
    lines = [CSV_ROW.format(number=number, time=time, length=length) for number, time, length in rows]
    return CSV_HEADER + "".join(lines).encode("utf-8")


def _option(code: int, value: bytes) -> bytes:
    """One pcapng option: code, length, value padded to 32 bits."""
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def _pcapng_with_interface_options(options: bytes) -> bytes:
    """A little-endian pcapng: Section Header, one Ethernet interface with ``options``, one packet."""
    # Section Header Block: type, total length, byte-order magic, version 1.0, section length -1 (unknown), total length.
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    # Interface Description Block: type 1, total length, link type 1 (Ethernet), reserved, snaplen, options, total length.
    body = options + _option(0, b"")
    idb_len = 20 + len(body)
    idb = struct.pack("<IIHHI", 1, idb_len, 1, 0, 65535) + body + struct.pack("<I", idb_len)
    # Enhanced Packet Block: interface 0, timestamp high/low = 0/1000, captured and wire length 60.
    frame = bytes(12) + b"\x08\x06" + bytes(46)
    epb_len = 32 + len(frame)
    epb = struct.pack("<IIIIIII", 6, epb_len, 0, 0, 1000, len(frame), len(frame)) + frame + struct.pack("<I", epb_len)
    return shb + idb + epb


def _decode(data: bytes, name: str = FILE_NAME):
    return decode_to_table(io.BytesIO(data), capture_id="finding", name=name)


def test_csv_repeated_frame_number_is_rejected():
    data = _csv(("1", "0.000000", "74"), ("2", "0.000412", "74"), ("2", "0.103000", "74"))

    table, summary = _decode(data, "export.csv")

    assert table.column("frame_number").to_pylist() == [1, 2]
    assert isinstance(summary.error, CaptureError)
    assert summary.error.frame_number == 3
    assert "export.csv" in str(summary.error)
    assert "frame number 2 is not above the previous row's 2" in str(summary.error)


def test_csv_filtered_export_keeps_gaps():
    data = _csv(("3", "0.000000", "74"), ("7", "0.000412", "74"), ("12", "0.103000", "74"))

    table, summary = _decode(data, "export.csv")

    assert summary.error is None
    assert table.column("frame_number").to_pylist() == [3, 7, 12]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("2", "0.000412", "812222222222222222222"), "frame_len 812222222222222222222 is outside 0..2147483647"),
        (("2", "0.000412", "-60"), "frame_len -60 is outside 0..2147483647"),
        (("2", "99999999999999999999.5", "74"), "is more than 2^62 ns from 1970-01-01"),
        (("99999999999999999999", "0.000412", "74"), "frame_number 99999999999999999999 is outside"),
    ],
    ids=["length-too-large", "length-negative", "time-too-large", "number-too-large"],
)
def test_csv_number_outside_column_range_is_rejected(row, message):
    data = _csv(("1", "0.000000", "74"), row)

    table, summary = _decode(data, "export.csv")

    assert table.num_rows == 1
    assert isinstance(summary.error, CaptureError)
    assert message in str(summary.error)
    assert "export.csv, frame 2" in str(summary.error)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (_option(9, b"\x29"), "timestamp resolution of 10^-41 s (if_tsresol 0x29)"),
        (_option(9, b"\xc0"), "timestamp resolution of 2^-64 s (if_tsresol 0xc0)"),
        (_option(14, struct.pack("<q", 2**62)), f"timestamp offset of {2**62} s"),
    ],
    ids=["decimal-resolution", "binary-resolution", "offset"],
)
def test_pcapng_unusable_interface_timestamps_are_rejected(option, message):
    table, summary = _decode(_pcapng_with_interface_options(option))

    assert table.num_rows == 0
    assert isinstance(summary.error, CaptureError)
    assert message in str(summary.error)
    assert str(summary.error).startswith(f"{FILE_NAME}, frame 1, byte offset 28:")


@pytest.mark.parametrize(
    ("option", "timestamp_ns"),
    [
        (_option(9, b"\x1c"), 0),  # 10^-28 s: 1000 ticks are far below 1 ns
        (_option(9, b"\x09"), 1000),  # 10^-9 s
        (_option(9, b"\xbf"), 0),  # 2^-63 s
        (_option(14, struct.pack("<q", 100)), 100_001_000_000),  # default 10^-6 s: 100 s + 1 ms
    ],
    ids=["decimal-10e-28", "decimal-10e-9", "binary-2e-63", "offset-100s"],
)
def test_pcapng_extreme_valid_interface_timestamps_decode(option, timestamp_ns):
    table, summary = _decode(_pcapng_with_interface_options(option))

    assert summary.error is None
    assert table.column("timestamp_ns").to_pylist() == [timestamp_ns]
