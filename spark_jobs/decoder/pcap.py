"""Classic libpcap files: microsecond and nanosecond magic, either byte order."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator

import numpy as np

from spark_jobs.decoder.errors import CaptureError
from spark_jobs.decoder.record_walk import walk_pcap_records
from spark_jobs.decoder.records import MAX_CAP_LEN_BYTES, RecordChunk
from spark_jobs.decoder.source import ByteStream

logger = logging.getLogger(__name__)

FILE_HEADER_BYTES = 24
RECORD_HEADER_BYTES = 16

# File magic bytes -> (struct byte order, timestamp ticks per second)
MAGICS: dict[bytes, tuple[str, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}

# Some writers store a snaplen that does not match what they captured: a
# capture cut at 96 bytes may store 262144, and others store 65535 but contain
# 256 KiB offloaded segments. The header snaplen is therefore only trusted as a
# bound with this factor, and never below 16 MiB.
SNAPLEN_MARGIN_FACTOR = 4
MIN_CAP_LEN_LIMIT_BYTES = 16 * 1024 * 1024


class PcapReader:
    """Stream the records of a classic pcap file as ``RecordChunk``s.

    After iteration, ``truncated`` is True when the file ended inside a record,
    and ``error`` is the fatal ``CaptureError`` that stopped it, if any.
    """

    def __init__(
        self, stream: ByteStream, name: str, *, first_frame_number: int, batch_frames: int
    ) -> None:
        self._stream = stream
        self._name = name
        self._next_frame_number = first_frame_number
        self._batch_frames = batch_frames
        self.truncated = False
        self.error: CaptureError | None = None
        self.link_type = 0
        self.snaplen = 0

    def read_header(self) -> bool:
        """Parse the 24-byte file header; False (with ``error`` set) when it is damaged."""
        stream = self._stream
        if not stream.fill(FILE_HEADER_BYTES):
            self.error = CaptureError(
                self._name,
                f"The pcap file header is incomplete: {stream.available} of "
                f"{FILE_HEADER_BYTES} bytes.",
                byte_offset=0,
                action="The file was cut short; copy it again from its source.",
            )
            return False
        header = stream.buffer[stream.pos:stream.pos + FILE_HEADER_BYTES]
        self._order, self._ticks_per_second = MAGICS[header[:4]]
        _, _, _, _, snaplen, link_field = struct.unpack(self._order + "HHiIII", header[4:])
        self.snaplen = snaplen
        # The upper bits of the link-type field carry FCS information.
        self.link_type = link_field & 0xFFFF
        self._cap_len_limit = MAX_CAP_LEN_BYTES
        if snaplen:
            self._cap_len_limit = min(
                MAX_CAP_LEN_BYTES, max(snaplen * SNAPLEN_MARGIN_FACTOR, MIN_CAP_LEN_LIMIT_BYTES)
            )
        stream.consume(FILE_HEADER_BYTES)
        return True

    def chunks(self) -> Iterator[RecordChunk]:
        stream = self._stream
        byte_order = "little" if self._order == "<" else "big"
        while True:
            if not stream.fill(RECORD_HEADER_BYTES):
                if stream.available:
                    self._mark_truncated()
                return

            offsets = self._scan()
            for first in range(0, len(offsets), self._batch_frames):
                chunk = self._to_chunk(offsets[first:first + self._batch_frames])
                if len(chunk):
                    yield chunk
                if self.error is not None:
                    return
            if len(offsets):
                continue

            # The buffer holds only part of the next record: read the rest,
            # unless its header is damaged.
            header = stream.buffer[stream.pos:stream.pos + RECORD_HEADER_BYTES]
            cap_len = int.from_bytes(header[8:12], byte_order)
            if cap_len > self._cap_len_limit:
                self.error = self._cap_len_error(cap_len, self._next_frame_number, stream.pos)
                return
            if not stream.fill(RECORD_HEADER_BYTES + cap_len):
                self._mark_truncated()
                return

    def _scan(self) -> np.ndarray:
        """Return the buffer offsets of all complete records in the buffer.

        The walk is compiled (see ``record_walk``). Every header field, and the
        check of each length against the limit, is read afterwards with numpy
        over all offsets at once. A damaged length only makes the walk jump,
        and ``_to_chunk`` cuts the records at the first damaged one.
        """
        stream = self._stream
        buf = np.frombuffer(stream.buffer, dtype=np.uint8)
        return walk_pcap_records(buf, stream.pos, len(buf), self._order == ">")

    def _cap_len_error(self, cap_len: int, frame_number: int, pos: int) -> CaptureError:
        byte_offset = self._stream.offset + (pos - self._stream.pos)
        return CaptureError(
            self._name,
            f"The record header claims {cap_len} captured bytes, more than the limit of "
            f"{self._cap_len_limit} bytes (file snaplen {self.snaplen}); the record header "
            "is damaged.",
            frame_number=frame_number,
            byte_offset=byte_offset,
            action="The frames before it were kept; the rest of the file cannot be located.",
        )

    def _to_chunk(self, record_offsets: np.ndarray) -> RecordChunk:
        stream = self._stream
        buf = np.frombuffer(stream.buffer, dtype=np.uint8)
        # One gather per header field through a 32-bit view at every byte offset.
        words = np.ndarray(
            shape=(len(buf) - 3,), dtype=np.dtype(self._order + "u4"), buffer=buf, strides=(1,)
        )
        seconds, fraction, cap_len, frame_len = (
            words[record_offsets + field_offset].astype(np.int64) for field_offset in (0, 4, 8, 12)
        )

        damaged = cap_len > self._cap_len_limit
        if damaged.any():
            first = int(np.argmax(damaged))
            self.error = self._cap_len_error(
                int(cap_len[first]), self._next_frame_number + first, int(record_offsets[first])
            )
            record_offsets, seconds, fraction, cap_len, frame_len = (
                record_offsets[:first], seconds[:first], fraction[:first], cap_len[:first], frame_len[:first]
            )

        timestamp_ns = seconds * 1_000_000_000 + fraction * (1_000_000_000 // self._ticks_per_second)
        count = len(record_offsets)
        if count:
            last = int(record_offsets[-1]) + RECORD_HEADER_BYTES + int(cap_len[-1])
            stream.consume(last - stream.pos)
        self._next_frame_number += count

        return RecordChunk(
            buf=buf,
            data_offset=record_offsets + RECORD_HEADER_BYTES,
            cap_len=cap_len,
            frame_len=frame_len,
            timestamp_ns=timestamp_ns,
            interface_id=np.zeros(count, dtype=np.int32),
            link_type=np.full(count, self.link_type, dtype=np.int32),
        )

    def _mark_truncated(self) -> None:
        self.truncated = True
        logger.warning(
            "%s: the file ends %d bytes into the record of frame %d (byte offset %d); "
            "the frames before it are kept; copy the file again from its source to get the rest",
            self._name,
            self._stream.available,
            self._next_frame_number,
            self._stream.offset,
        )
