"""Damaged input never raises: seeded random corruption of real captures."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from spark_jobs.decoder import CaptureDecoder, CaptureError
from spark_jobs.packet_schema import PACKET_SCHEMA

SOURCES = [
    "two-link-types.pcapng",
    "qinq-vlan.pcap",
    "ip-fragments.pcap",
    "raw-ip-v4-v6.pcap",
    "linux-cooked-v2.pcap",
    "wireshark-export.csv",
]
MUTATIONS_PER_SOURCE = 150


def decode_all(data: bytes):
    decoder = CaptureDecoder(io.BytesIO(data), capture_id="fuzz", batch_frames=2)
    batches = list(decoder.batches())
    return batches, decoder.summary


@pytest.mark.parametrize("source", SOURCES)
def test_corrupted_bytes_never_raise(cases_dir, source):
    original = (cases_dir / source).read_bytes()
    rng = np.random.default_rng(20241204)
    for _ in range(MUTATIONS_PER_SOURCE):
        data = bytearray(original)
        for position in rng.integers(0, len(data), rng.integers(1, 12)):
            data[position] = int(rng.integers(0, 256))
        cut = int(rng.integers(len(data) // 2, len(data) + 1))
        batches, summary = decode_all(bytes(data[:cut]))
        for batch in batches:
            assert batch.schema == PACKET_SCHEMA
            assert min(batch.column("inter_arrival_ns").to_pylist(), default=0) >= 0
        assert summary.error is None or isinstance(summary.error, CaptureError)
        assert summary.frames == sum(batch.num_rows for batch in batches)


def test_damaged_gzip_stream_reports_error(cases_dir):
    compressed = bytearray(gzip.compress((cases_dir / "qinq-vlan.pcap").read_bytes()))
    compressed[20:40] = b"\xff" * 20
    batches, summary = decode_all(bytes(compressed))
    assert summary.compressed is True
    assert isinstance(summary.error, CaptureError)
    assert "gzip stream is damaged" in str(summary.error)


def _frames_of(data: bytes):
    batches, summary = decode_all(data)
    rows = [row for batch in batches for row in batch.select(["timestamp_ns", "frame_len", "src_addr"]).to_pylist()]
    return rows, summary


def test_damaged_gzip_keeps_frames_before_the_damage(captures_dir):
    original = (captures_dir / "attack-arp-scan.pcap").read_bytes()
    compressed = bytearray(gzip.compress(original))
    for position in range(1500, 1600):
        compressed[position] ^= 0xFF
    expected, _ = _frames_of(original)

    decoded, summary = _frames_of(bytes(compressed))

    assert len(decoded) >= 100
    assert decoded == expected[:len(decoded)]
    assert "gzip stream is damaged" in str(summary.error)
    assert summary.error.frame_number == len(decoded) + 1
    assert summary.error.byte_offset > 0


def test_gzip_cut_before_first_byte_is_not_empty(captures_dir):
    compressed = gzip.compress((captures_dir / "attack-arp-scan.pcap").read_bytes())

    decoded, summary = _frames_of(compressed[:15])

    assert decoded == []
    assert summary.truncated is True
    assert "cut short" in str(summary.error)
    assert "empty" not in str(summary.error)


def test_gzip_cut_mid_stream_keeps_complete_frames(captures_dir):
    original = (captures_dir / "attack-arp-scan.pcap").read_bytes()
    expected, _ = _frames_of(original)

    decoded, summary = _frames_of(gzip.compress(original)[:2000])

    assert 0 < len(decoded) < len(expected)
    assert decoded == expected[:len(decoded)]
    assert summary.truncated is True
    assert summary.error is None


def test_gzip_members_and_padding_decode_whole(captures_dir):
    original = (captures_dir / "attack-arp-scan.pcap").read_bytes()
    expected, _ = _frames_of(original)
    # Two members, as `cat a.gz b.gz` writes, then zero padding.
    data = gzip.compress(original[:10_000]) + gzip.compress(original[10_000:]) + b"\0" * 20

    decoded, summary = _frames_of(data)

    assert decoded == expected
    assert summary.truncated is False
    assert summary.error is None
