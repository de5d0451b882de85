"""Write large synthetic Ethernet/IPv4 TCP+UDP captures for decoder benchmarks.

Frames are built with numpy, a block of records at a time, so writing several
million frames takes seconds and memory stays bounded by the block size.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
BLOCK_FRAMES = 500_000
HOSTS = 256
TCP_PORTS = np.array([80, 443, 22, 8080, 445, 3306], dtype=np.int64)
UDP_PORTS = np.array([53, 123, 5353, 1900, 161, 4500], dtype=np.int64)


def _put16(buf: np.ndarray, pos: np.ndarray, value: np.ndarray) -> None:
    buf[pos] = value >> 8
    buf[pos + 1] = value & 0xFF


def _put32(buf: np.ndarray, pos: np.ndarray, value: np.ndarray) -> None:
    for index in range(4):
        buf[pos + index] = (value >> (24 - 8 * index)) & 0xFF


def _put32_le(buf: np.ndarray, pos: np.ndarray, value: np.ndarray) -> None:
    for index in range(4):
        buf[pos + index] = (value >> (8 * index)) & 0xFF


def _block(rng: np.random.Generator, count: int, first_ns: int) -> tuple[bytes, int]:
    """Build ``count`` pcap records; returns the bytes and the next timestamp in ns."""
    is_tcp = rng.random(count) < 0.7
    payload = rng.integers(0, 200, count)
    payload[rng.random(count) < 0.4] = 0
    header = np.where(is_tcp, 14 + 20 + 20, 14 + 20 + 8)
    frame_len = header + payload
    record_len = 16 + frame_len
    ends = np.cumsum(record_len)
    starts = ends - record_len
    # Random bytes everywhere; the headers below overwrite their part.
    buf = rng.integers(0, 256, int(ends[-1]), dtype=np.uint8)

    gaps = rng.exponential(20_000, count).astype(np.int64)  # mean 20 µs between frames
    timestamp_ns = first_ns + np.cumsum(gaps)
    seconds = timestamp_ns // 1_000_000_000
    micros = (timestamp_ns % 1_000_000_000) // 1_000
    _put32_le(buf, starts, seconds)
    _put32_le(buf, starts + 4, micros)
    _put32_le(buf, starts + 8, frame_len)
    _put32_le(buf, starts + 12, frame_len)

    frame = starts + 16
    src_host = rng.integers(1, HOSTS, count)
    dst_host = rng.integers(1, HOSTS, count)
    # MAC addresses 02:00:00:00:00:<host>, locally administered.
    for index in range(6):
        buf[frame + index] = 0
        buf[frame + 6 + index] = 0
    buf[frame] = 0x02
    buf[frame + 6] = 0x02
    buf[frame + 5] = dst_host
    buf[frame + 11] = src_host
    _put16(buf, frame + 12, np.full(count, 0x0800))

    ip = frame + 14
    buf[ip] = 0x45
    buf[ip + 1] = 0
    _put16(buf, ip + 2, frame_len - 14)
    _put16(buf, ip + 4, rng.integers(0, 65536, count))
    _put16(buf, ip + 6, np.full(count, 0x4000))  # don't fragment, offset 0
    buf[ip + 8] = 64
    buf[ip + 9] = np.where(is_tcp, 6, 17)
    _put32(buf, ip + 12, (10 << 24) | src_host)
    _put32(buf, ip + 16, (10 << 24) | (1 << 16) | dst_host)

    l4 = ip + 20
    service = np.where(is_tcp, TCP_PORTS[rng.integers(0, len(TCP_PORTS), count)],
                       UDP_PORTS[rng.integers(0, len(UDP_PORTS), count)])
    ephemeral = rng.integers(32768, 61000, count)
    to_service = rng.random(count) < 0.5
    _put16(buf, l4, np.where(to_service, ephemeral, service))
    _put16(buf, l4 + 2, np.where(to_service, service, ephemeral))
    tcp = l4[is_tcp]
    _put32(buf, tcp + 4, rng.integers(0, 2**32, len(tcp)))
    buf[tcp + 12] = 0x50
    buf[tcp + 13] = rng.choice(np.array([0x02, 0x12, 0x10, 0x18, 0x11]), len(tcp))
    _put16(buf, tcp + 14, rng.integers(1024, 65536, len(tcp)))
    udp = l4[~is_tcp]
    _put16(buf, udp + 4, 8 + payload[~is_tcp])
    return buf.tobytes(), int(timestamp_ns[-1])


def write_synthetic_pcap(path: Path, frames: int, *, seed: int = 7) -> int:
    """Write a classic µs pcap of ``frames`` Ethernet/IPv4 frames (70% TCP, 30% UDP).

    Payload bytes are random, so application protocols are recognised by port
    alone (DNS, NTP, SSH and others) and TLS or SMB headers almost never.

    Returns:
        The file size in bytes.
    """
    rng = np.random.default_rng(seed)
    next_ns = 1_733_300_000 * 1_000_000_000
    with open(path, "wb") as output:
        output.write(PCAP_HEADER)
        remaining = frames
        while remaining:
            count = min(BLOCK_FRAMES, remaining)
            data, next_ns = _block(rng, count, next_ns)
            output.write(data)
            remaining -= count
    return path.stat().st_size
