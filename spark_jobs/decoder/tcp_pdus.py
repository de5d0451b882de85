"""Protocol names for TCP segments of length-prefixed protocols, as Wireshark's
reassembly shows them.

Wireshark reassembles TCP streams, so a TLS record or a NetBIOS session
message that spans several segments is named only in the segment that
completes it. The segments before it show "TCP". A segment that starts in the
middle of a record is still named when it completes that record or contains a
whole record. This module follows the record boundaries of each direction of
each TCP connection to do the same for TLS (5-byte header), NBSS (4-byte
header, carrying SMB and SMB2) and HTTP (headers, then a Content-Length body).

It walks the segments of those ports one by one in Python, because each
segment's record boundary depends on the previous segment of the same
direction. Only payload frames on the TLS, SMB and HTTP ports, in directions
where a record header was seen, take this path, so other traffic keeps the
vectorised speed. State is one small entry per direction of each such
connection.
"""

from __future__ import annotations

import re

import numpy as np

from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.frame_bytes import MISSING
from spark_jobs.decoder.protocol_names import HTTP_PREFIX_WORDS

TLS_HEADER_BYTES = 5
NBSS_HEADER_BYTES = 4
SEQUENCE_MODULUS = 1 << 32
SMB1_MARKER = b"\xffSMB"
SMB2_MARKER = b"\xfeSMB"
NBSS_TYPES = (0x00, 0x81, 0x82, 0x83, 0x84, 0x85)
TLS_NAMES = {0: "SSLv3", 1: "TLSv1", 2: "TLSv1.1", 3: "TLSv1.2"}
HTTP_START_WORDS = frozenset(HTTP_PREFIX_WORDS.tolist())
MAX_HTTP_HEADER_BYTES = 65_536
CONTENT_LENGTH_PATTERN = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CHUNKED_PATTERN = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)


class _Direction:
    """Record-boundary position of one direction of a TCP connection."""

    __slots__ = ("next_seq", "remaining", "pending_name")

    def __init__(self, next_seq: int, remaining: int, pending_name: str | None) -> None:
        self.next_seq = next_seq
        self.remaining = remaining
        self.pending_name = pending_name


def tls_record(data, offset: int, available: int) -> tuple[int, str] | None:
    """(record length with header, name) of the TLS record at ``offset``, or None."""
    if offset + TLS_HEADER_BYTES > available:
        return None
    content_type, major, minor = data[offset], data[offset + 1], data[offset + 2]
    if not 20 <= content_type <= 24 or major != 3 or minor > 4:
        return None
    length = (data[offset + 3] << 8) | data[offset + 4]
    return TLS_HEADER_BYTES + length, TLS_NAMES.get(minor, "TLSv1.2")


def nbss_message(data, offset: int, available: int) -> tuple[int, str] | None:
    """(message length with header, name) of the NBSS message at ``offset``, or None."""
    if offset + NBSS_HEADER_BYTES > available:
        return None
    message_type, flags = data[offset], data[offset + 1]
    if message_type not in NBSS_TYPES or flags & 0xFE:
        return None
    length = ((flags & 1) << 16) | (data[offset + 2] << 8) | data[offset + 3]
    name = "NBSS"
    if message_type == 0:
        marker = bytes(data[offset + 4:offset + 8]) if offset + 8 <= available else b""
        if marker == SMB2_MARKER:
            name = "SMB2"
        elif marker == SMB1_MARKER:
            name = "SMB"
    return NBSS_HEADER_BYTES + length, name


def http_message(data, offset: int, available: int) -> tuple[int, str] | None:
    """(message length with headers and body, "HTTP") of the HTTP message at ``offset``, or None.

    The body length comes from Content-Length (0 when absent).
    NOTE: chunked and close-delimited bodies are not followed: the message is
    taken to end with its headers, so their later segments are named "TCP".
    """
    if offset + 4 > available:
        return None
    head = bytes(data[offset:min(available, offset + MAX_HTTP_HEADER_BYTES)])
    if int.from_bytes(head[:4], "big") not in HTTP_START_WORDS:
        return None
    header_end = head.find(b"\r\n\r\n")
    if header_end < 0:
        return None
    headers = head[:header_end]
    header_len = header_end + 4
    if CHUNKED_PATTERN.search(headers):
        return header_len, "HTTP"
    match = CONTENT_LENGTH_PATTERN.search(headers)
    return header_len + (int(match.group(1)) if match else 0), "HTTP"


TLS_KIND, NBSS_KIND, HTTP_KIND = 0, 1, 2
PARSERS = (tls_record, nbss_message, http_message)
MAX_RECORDS_PER_SEGMENT = 64
# Directions remembered at most; the least recently used are forgotten first,
# and a forgotten direction starts afresh at its next segment.
MAX_DIRECTIONS = 200_000


def _starts_with_header(word: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """True where the first payload bytes (``word``, big-endian) look like a record header."""
    first = word >> 24
    second = (word >> 16) & 0xFF
    third = (word >> 8) & 0xFF
    tls = (first >= 20) & (first <= 24) & (second == 3) & (third <= 4)
    nbss = np.isin(first, NBSS_TYPES) & ((second & 0xFE) == 0)
    http = np.isin(word, HTTP_PREFIX_WORDS)
    return (word >= 0) & np.where(kinds == TLS_KIND, tls, np.where(kinds == NBSS_KIND, nbss, http))


class TcpPdus:
    """Per-capture record-boundary state for TLS and NBSS over TCP.

    One entry per connection direction that has shown a record header, up to
    ``MAX_DIRECTIONS``: the next expected sequence number (to tell
    retransmissions, which Wireshark names TCP) and the bytes left of the
    record in flight.
    """

    def __init__(self) -> None:
        self._directions: dict[int, _Direction] = {}

    def rename(
        self, dissection: Dissection, codes: np.ndarray, rows: np.ndarray, keys: np.ndarray, kinds: np.ndarray
    ) -> None:
        """Set ``codes`` of the TCP payload frames at ``rows`` (file order).

        Args:
            keys: Direction keys (uint64) aligned with ``rows``.
            kinds: ``TLS_KIND``, ``NBSS_KIND`` or ``HTTP_KIND`` per row.
        """
        # Only directions that have a record header somewhere in this batch,
        # or state from an earlier batch, need the walk. In the others every
        # segment is "TCP", which the port naming already set.
        starts = _starts_with_header(dissection.payload_word[rows], kinds)
        active = set(keys[starts].tolist())
        active.update(self._directions)
        if not active:
            return
        walk = np.isin(keys, np.fromiter(active, dtype=np.uint64, count=len(active)))
        rows, keys, kinds = rows[walk], keys[walk], kinds[walk]

        frames = dissection.frames
        data = memoryview(frames.buf)
        sequences = frames.subset(rows).u32(dissection.l4_off[rows] + 4).tolist()
        lengths = dissection.payload_len[rows].tolist()
        starts = (frames.start[rows] + dissection.payload_off[rows]).tolist()
        ends = (frames.start[rows] + frames.cap_len[rows]).tolist()
        names: list[str | None] = []
        directions = self._directions

        for seq, length, start, available, key, kind in zip(
            sequences, lengths, starts, ends, keys.tolist(), kinds.tolist()
        ):
            names.append(self._segment(directions, data, seq, length, start, available, key, kind))

        table = dissection.names
        codes[rows] = [table.code(name) if name is not None else table.code("TCP") for name in names]

    @staticmethod
    def _segment(directions, data, seq, length, start, available, key, kind) -> str | None:
        """Follow one segment; returns the name of the last record it completes, or None."""
        if seq == MISSING:
            return None
        parse = PARSERS[kind]
        state = directions.pop(key, None)
        offset = 0
        pending = None
        if state is not None and seq != state.next_seq:
            if (state.next_seq - seq) % SEQUENCE_MODULUS < SEQUENCE_MODULUS // 2:
                # A retransmission of bytes already seen: Wireshark names it TCP.
                directions[key] = state
                return None
            state = None
        if state is not None:
            offset, pending = state.remaining, state.pending_name

        name = None
        remaining = 0
        if offset > length:
            remaining = offset - length
        else:
            if offset > 0:
                name = pending
            pending = None
            for _ in range(MAX_RECORDS_PER_SEGMENT):
                if offset >= length:
                    break
                record = parse(data, start + offset, available)
                if record is None:
                    # Lost the record boundary (not captured, or not this protocol).
                    break
                record_len, record_name = record
                if offset + record_len > length:
                    remaining = offset + record_len - length
                    pending = record_name
                    break
                name = record_name
                offset += record_len

        directions[key] = _Direction((seq + length) % SEQUENCE_MODULUS, remaining, pending)
        if len(directions) > MAX_DIRECTIONS:
            del directions[next(iter(directions))]
        return name
