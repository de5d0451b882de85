"""Split a large classic pcap into byte ranges that executors decode in parallel.

Classic pcap has no index: a record's start is known only by walking every
record header before it. Each chunk task therefore finds its own first record by
resynchronising near its nominal start offset: the first offset from which
``RESYNC_CHAIN`` consecutive record headers are all plausible (fraction of a
second in range, captured length within limits and not above the original
length). It then walks the record headers up to its nominal end, counting frames,
so its end is the first record starting at or after that offset.

The driver accepts the plan only when every chunk starts exactly where the
previous one ended; otherwise, or when a walk met an impossible header, the
capture is decoded in one task, which reports damage with the decoder's exact
frame number and byte offset. pcapng and gzip captures are always decoded in one
task.

Chunks are read twice, once to walk the headers and once to decode, so the
split costs one extra read of the capture in exchange for parallel decoding.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

from objectstore import ObjectStore

PCAP_HEADER_BYTES = 24
RECORD_HEADER_BYTES = 16
RESYNC_CHAIN = 8
RESYNC_WINDOW_BYTES = 4 << 20
MAX_PLAUSIBLE_CAPLEN = 1 << 20
MAX_PLAUSIBLE_ORIGLEN = 16 << 20

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}


@dataclass(frozen=True)
class PcapLayout:
    """Record layout of a classic pcap, read from its file header."""

    byte_order: str
    ticks_per_second: int
    header: bytes

    def record_header(self, data: bytes, offset: int) -> tuple[int, int, int, int]:
        """Return (seconds, fraction, captured length, original length) of the record at ``offset``."""
        return struct.unpack_from(self.byte_order + "IIII", data, offset)

    def timestamp_ns(self, seconds: int, fraction: int) -> int:
        """Return a record's time in nanoseconds since the epoch."""
        return seconds * 1_000_000_000 + fraction * (1_000_000_000 // self.ticks_per_second)


def pcap_layout(first_bytes: bytes) -> PcapLayout | None:
    """Return the layout of a classic, uncompressed pcap, or None for any other content."""
    if len(first_bytes) < PCAP_HEADER_BYTES or first_bytes[:4] not in _MAGICS:
        return None
    byte_order, ticks = _MAGICS[first_bytes[:4]]
    return PcapLayout(byte_order, ticks, bytes(first_bytes[:PCAP_HEADER_BYTES]))


def plan_nominal_chunks(size_bytes: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """Return nominal [start, end) byte ranges covering the records of a pcap of ``size_bytes``."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
    ranges = []
    start = PCAP_HEADER_BYTES
    while start < size_bytes:
        end = min(start + chunk_bytes, size_bytes)
        ranges.append((start, end))
        start = end
    return ranges


def _plausible(layout: PcapLayout, data: bytes, offset: int) -> int | None:
    """Return the record's total length if the header at ``offset`` is plausible, else None."""
    if offset + RECORD_HEADER_BYTES > len(data):
        return None
    _seconds, fraction, caplen, origlen = layout.record_header(data, offset)
    if fraction >= layout.ticks_per_second or caplen > MAX_PLAUSIBLE_CAPLEN:
        return None
    if origlen > MAX_PLAUSIBLE_ORIGLEN or caplen > origlen or origlen == 0:
        return None
    return RECORD_HEADER_BYTES + caplen


def find_record_start(layout: PcapLayout, data: bytes, *, at_end_of_file: bool) -> int | None:
    """Return the first offset in ``data`` where a chain of plausible record headers starts.

    A chain is ``RESYNC_CHAIN`` headers, each starting where the previous record
    ends. A shorter chain that reaches exactly the end of ``data`` also counts
    when ``data`` runs to the end of the file.
    """
    for candidate in range(0, max(len(data) - RECORD_HEADER_BYTES + 1, 0)):
        offset, links = candidate, 0
        while links < RESYNC_CHAIN:
            length = _plausible(layout, data, offset)
            if length is None:
                break
            offset += length
            links += 1
            if offset == len(data) and at_end_of_file:
                links = RESYNC_CHAIN
        if links >= RESYNC_CHAIN:
            return candidate
    return None


@dataclass
class ChunkBoundary:
    """Record boundaries of one chunk and the outcome of its header walk.

    ``ok`` is False when no record start was found or an impossible header was
    met; the driver then decodes the capture in one task.
    """

    index: int
    start: int
    end: int
    frames: int
    last_timestamp_ns: int | None
    ok: bool
    reason: str | None = None


def _read_exactly(stream: BinaryIO, count: int) -> bytes:
    chunks, remaining = [], count
    while remaining:
        data = stream.read(remaining)
        if not data:
            break
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


def walk_chunk(
    store: ObjectStore, key: str, layout: PcapLayout, *, index: int, nominal_start: int, nominal_end: int, size_bytes: int
) -> ChunkBoundary:
    """Find a chunk's first record and walk its record headers up to ``nominal_end``."""
    start = nominal_start
    if index > 0:
        window = min(RESYNC_WINDOW_BYTES, size_bytes - nominal_start)
        with store.open_range(key, nominal_start, window) as stream:
            data = _read_exactly(stream, window)
        found = find_record_start(layout, data, at_end_of_file=nominal_start + window >= size_bytes)
        if found is None:
            return ChunkBoundary(index, nominal_start, nominal_end, 0, None, False, "no record start found")
        start = nominal_start + found

    offset, frames, last_ns = start, 0, None
    with store.open_range(key, start, size_bytes - start) as raw:
        stream = io.BufferedReader(raw, buffer_size=1 << 20) if not isinstance(raw, io.BufferedReader) else raw
        while offset < nominal_end:
            header = _read_exactly(stream, RECORD_HEADER_BYTES)
            if len(header) < RECORD_HEADER_BYTES:
                break
            length = _plausible(layout, header, 0)
            if length is None:
                return ChunkBoundary(index, start, offset, frames, last_ns, False, f"implausible record header at byte {offset}")
            seconds, fraction, caplen, _origlen = layout.record_header(header, 0)
            body = _read_exactly(stream, caplen)
            if len(body) < caplen:
                break
            last_ns = layout.timestamp_ns(seconds, fraction)
            frames += 1
            offset += length
    end = size_bytes if nominal_end >= size_bytes else offset
    return ChunkBoundary(index, start, end, frames, last_ns, True)


class PrefixedRange(io.RawIOBase):
    """A pcap file header followed by a byte range of records, read as one stream.

    The decoder therefore reads a complete classic pcap whose records are the chunk's.
    """

    def __init__(self, header: bytes, body: BinaryIO) -> None:
        self._header = memoryview(header)
        self._position = 0
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._position < len(self._header):
            count = min(len(buffer), len(self._header) - self._position)
            buffer[:count] = self._header[self._position : self._position + count]
            self._position += count
            return count
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
