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
