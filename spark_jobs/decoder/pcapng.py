"""pcapng files: several sections, each with its own byte order and interfaces.

Packet records come from Enhanced Packet Blocks, Simple Packet Blocks and the
obsolete Packet Block. Interface numbers in the output are global across
sections, in the order the Interface Description Blocks appear, as Wireshark
numbers them.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from spark_jobs.decoder.errors import CaptureError
from spark_jobs.decoder.record_walk import walk_enhanced_packet_blocks
from spark_jobs.decoder.records import MAX_CAP_LEN_BYTES, RecordChunk, gather_rows
from spark_jobs.decoder.source import ByteStream

logger = logging.getLogger(__name__)

SHB_TYPE = 0x0A0D0D0A
SHB_BYTES = b"\x0a\x0d\x0d\x0a"  # the same in either byte order
IDB_TYPE = 1
PB_TYPE = 2
SPB_TYPE = 3
EPB_TYPE = 6
MIN_BLOCK_BYTES = 12
MAX_BLOCK_BYTES = MAX_CAP_LEN_BYTES + 64 * 1024

OPTION_END = 0
OPTION_IF_TSRESOL = 9
OPTION_IF_TSOFFSET = 14
MAX_DECIMAL_TSRESOL = 28  # 10^(28 - 9) is the largest power of ten below 2^64
MAX_BINARY_TSRESOL = 63
MAX_TSOFFSET_S = (2**63 - 1) // 1_000_000_000

# Bytes from the block start to the packet data, per block type.
DATA_START = {EPB_TYPE: 28, SPB_TYPE: 12, PB_TYPE: 28}


@dataclass
class Interface:
    """One Interface Description Block, with its timestamp unit."""

    link_type: int
    snaplen: int
    tsresol: int = 6  # if_tsresol byte; 6 (10^-6 s) where the block has no such option
    tsoffset_s: int = 0

    def timestamp_problem(self) -> str | None:
        """Describe why this interface's timestamps cannot become int64 nanoseconds, or None.

        A decimal resolution finer than 10^-28 s makes the divisor of ``to_ns``
        exceed 64 bits, a binary one finer than 2^-63 s the fraction mask, and an
        offset beyond about 292 years the int64 nanosecond range.
        """
        exponent = self.tsresol & 0x7F
        max_exponent = MAX_BINARY_TSRESOL if self.tsresol & 0x80 else MAX_DECIMAL_TSRESOL
        if exponent > max_exponent:
            base = "2" if self.tsresol & 0x80 else "10"
            return (
                f"The Interface Description Block has a timestamp resolution of {base}^-{exponent} s "
                f"(if_tsresol 0x{self.tsresol:02x}); at most {base}^-{max_exponent} s can be read."
            )
        if abs(self.tsoffset_s) > MAX_TSOFFSET_S:
            return (
                f"The Interface Description Block has a timestamp offset of {self.tsoffset_s} s "
                f"(if_tsoffset), beyond the {MAX_TSOFFSET_S} s that 64-bit nanosecond timestamps hold."
            )
        return None

    def to_ns(self, ticks: np.ndarray) -> np.ndarray:
        """Convert raw 64-bit timestamps (uint64) of this interface to ns since the epoch.

        Call only when ``timestamp_problem()`` returns None.
        """
        exponent = self.tsresol & 0x7F
        if self.tsresol & 0x80:
            # Power-of-two resolution: split seconds and fraction to stay in 64 bits.
            seconds = ticks >> np.uint64(exponent)
            fraction = ticks & np.uint64((1 << exponent) - 1)
            fraction_ns = (fraction.astype(np.float64) * 1e9 / float(1 << exponent)).round()
            result = seconds.astype(np.int64) * 1_000_000_000 + fraction_ns.astype(np.int64)
        elif exponent <= 9:
            result = ticks.astype(np.int64) * (10 ** (9 - exponent))
        else:
            result = (ticks // np.uint64(10 ** (exponent - 9))).astype(np.int64)
        return result + self.tsoffset_s * 1_000_000_000


class PcapngReader:
    """Stream the packet records of a pcapng file as ``RecordChunk``s.

    After iteration, ``truncated`` is True when the file ended inside a block,
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
        self.interfaces: list[Interface] = []
        self._section_first_interface = 0
        self._order = "<"

    def read_header(self) -> bool:
        """Nothing to do up front: the first Section Header Block is read as a block."""
        return True

    def chunks(self) -> Iterator[RecordChunk]:
        stream = self._stream
        while True:
            if not stream.fill(MIN_BLOCK_BYTES):
                if stream.available:
                    self._mark_truncated()
                return

            start_offset = stream.offset
            records, error = self._scan()
            if records:
                chunk = self._to_chunk(records)
                if len(chunk):
                    yield chunk
                if self.error is not None:
                    return
                continue
            if error is not None:
                self.error = error
                return
            if stream.offset != start_offset:
                # Blocks without packets (statistics, name resolution) were skipped.
                continue

            # The buffer holds only part of the next block: read the rest.
            block_len = self._block_length(stream.buffer, stream.pos)
            if not stream.fill(block_len):
                self._mark_truncated()
                return

    def _block_length(self, buf: bytes, pos: int) -> int:
        block_type = struct.unpack_from("<I", buf, pos)[0]
        if block_type == SHB_TYPE:
            order = "<" if buf[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            return struct.unpack_from(order + "I", buf, pos + 4)[0]
        return struct.unpack_from(self._order + "I", buf, pos + 4)[0]

    def _scan(self) -> tuple[list[int], CaptureError | None]:
        """Walk the blocks in the buffer and collect packet records, up to one batch.

        Block positions depend on the previous block's length, so the walk is
        sequential. It reads only each block's type and length: runs of
        Enhanced Packet Blocks are walked by compiled code (``record_walk``),
        other blocks here, and packet fields later with numpy. The walk stops
        at a new Section Header Block once records are collected, because the
        byte order may change there.

        Returns:
            ``(records, error)``, each record the buffer offset of a packet block.
        """
        stream = self._stream
        buf = stream.buffer
        array = np.frombuffer(buf, dtype=np.uint8)
        pos = stream.pos
        end = len(buf)
        byte_order = "little" if self._order == "<" else "big"
        from_bytes = int.from_bytes
        records: list[int] = []
        append = records.append
        remaining = self._batch_frames
        while remaining and pos + MIN_BLOCK_BYTES <= end:
            run, pos = walk_enhanced_packet_blocks(
                array, pos, end, byte_order == "big", remaining, MAX_BLOCK_BYTES
            )
            if len(run):
                records.extend(run.tolist())
                remaining -= len(run)
                continue

            # Any block other than a complete, well-formed Enhanced Packet Block.
            block_len = from_bytes(buf[pos + 4:pos + 8], byte_order)

            if buf[pos:pos + 4] == SHB_BYTES:
                if records:
                    break
                block_len, error = self._section_header(buf, pos, end)
                if error is not None or block_len == 0:
                    self._consume_to(pos)
                    return records, error
                byte_order = "little" if self._order == "<" else "big"
                pos += block_len
                self._consume_to(pos)
                continue

            block_type = from_bytes(buf[pos:pos + 4], byte_order)
            if block_len % 4 or block_len < MIN_BLOCK_BYTES or block_len > MAX_BLOCK_BYTES:
                self._consume_to(pos)
                return records, self._block_error(
                    f"The block of type 0x{block_type:08x} has an invalid length of "
                    f"{block_len} bytes (it must be a multiple of 4 between "
                    f"{MIN_BLOCK_BYTES} and {MAX_BLOCK_BYTES}).",
                    pos,
                    len(records),
                )
            if pos + block_len > end:
                break

            if block_type in DATA_START:
                append(pos)
                remaining -= 1
            elif block_type == IDB_TYPE:
                self._interface(buf, pos, block_len)
                problem = self.interfaces[-1].timestamp_problem()
                if problem is not None:
                    self._consume_to(pos)
                    return records, self._block_error(problem, pos, len(records))
            pos += block_len

        if not records:
            self._consume_to(pos)
        return records, None

    def _consume_to(self, pos: int) -> None:
        self._stream.consume(pos - self._stream.pos)

    def _section_header(self, buf: bytes, pos: int, end: int) -> tuple[int, CaptureError | None]:
        """Start a new section; returns (block length, error), length 0 when incomplete."""
        magic = buf[pos + 8:pos + 12]
        if magic == b"\x4d\x3c\x2b\x1a":
            order = "<"
        elif magic == b"\x1a\x2b\x3c\x4d":
            order = ">"
        else:
            return 0, self._block_error(
                f"The Section Header Block has an unknown byte-order magic {magic.hex()}.",
                pos,
                0,
            )
        block_len = struct.unpack_from(order + "I", buf, pos + 4)[0]
        if block_len % 4 or block_len < 28 or block_len > MAX_BLOCK_BYTES:
            return 0, self._block_error(
                f"The Section Header Block has an invalid length of {block_len} bytes.", pos, 0
            )
        if pos + block_len > end:
            return 0, None
        self._order = order
        self._section_first_interface = len(self.interfaces)
        return block_len, None

    def _interface(self, buf: bytes, pos: int, block_len: int) -> None:
        order = self._order
        link_type, _, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        interface = Interface(link_type=link_type, snaplen=snaplen)
        option_pos = pos + 16
        options_end = pos + block_len - 4
        while option_pos + 4 <= options_end:
            code, length = struct.unpack_from(order + "HH", buf, option_pos)
            value_pos = option_pos + 4
            if code == OPTION_END or value_pos + length > options_end:
                break
            if code == OPTION_IF_TSRESOL and length >= 1:
                interface.tsresol = buf[value_pos]
            elif code == OPTION_IF_TSOFFSET and length >= 8:
                interface.tsoffset_s = struct.unpack_from(order + "q", buf, value_pos)[0]
            option_pos = value_pos + (length + 3) // 4 * 4
        self.interfaces.append(interface)

    def _to_chunk(self, records: list[int]) -> RecordChunk:
        stream = self._stream
        buf = np.frombuffer(stream.buffer, dtype=np.uint8)
        order = self._order
        block_offset = np.array(records, dtype=np.int64)
        type_and_length = gather_rows(buf, block_offset, 8).view(np.dtype(order + "u4")).astype(np.int64)
        block_type, block_len = type_and_length[:, 0], type_and_length[:, 1]
        count = len(records)

        # Bytes 8..27 hold the fixed fields of EPB and PB. An SPB has only 4 of
        # them and may end sooner, so indexes past the buffer are clipped and
        # the bytes read there are never used.
        width = 20
        index = block_offset[:, None] + 8 + np.arange(width, dtype=np.int64)[None, :]
        head = buf[np.minimum(index, len(buf) - 1)]
        u32 = head.view(np.dtype(order + "u4")).astype(np.int64)
        u16 = head[:, :4].view(np.dtype(order + "u2")).astype(np.int64)

        is_epb = block_type == EPB_TYPE
        is_pb = block_type == PB_TYPE
        is_spb = block_type == SPB_TYPE
        local_interface = np.where(is_epb, u32[:, 0], np.where(is_pb, u16[:, 0], 0))
        ticks = (u32[:, 1].astype(np.uint64) << np.uint64(32)) | u32[:, 2].astype(np.uint64)
        cap_len = np.where(is_spb, 0, u32[:, 3])
        frame_len = np.where(is_spb, u32[:, 0], u32[:, 4])
        data_start = np.where(is_spb, 12, 28)
        room = block_len - data_start - 4

        n_section = len(self.interfaces) - self._section_first_interface
        bad_interface = local_interface >= n_section
        if is_spb.any():
            snaplen0 = self.interfaces[self._section_first_interface].snaplen if n_section else 0
            spb_cap = np.minimum(frame_len, room)
            if snaplen0:
                spb_cap = np.minimum(spb_cap, snaplen0)
            cap_len = np.where(is_spb, spb_cap, cap_len)
            bad_interface |= is_spb & (n_section == 0)

        bad = bad_interface | (cap_len > room) | (cap_len < 0)
        if bad.any():
            first = int(np.argmax(bad))
            reason = (
                f"The packet block names interface {int(local_interface[first])}, but the "
                f"section has {n_section} interface(s)."
                if bad_interface[first]
                else f"The packet block claims {int(cap_len[first])} captured bytes but has "
                f"room for {int(room[first])}."
            )
            self.error = self._block_error(reason, int(block_offset[first]), first)
            block_type, block_offset, block_len = block_type[:first], block_offset[:first], block_len[:first]
            count = first
            local_interface, ticks, cap_len, frame_len, data_start = (
                local_interface[:first], ticks[:first], cap_len[:first], frame_len[:first],
                data_start[:first],
            )

        global_interface = local_interface + self._section_first_interface
        link_types = np.array([i.link_type for i in self.interfaces] or [0], dtype=np.int32)
        timestamp_ns = np.zeros(count, dtype=np.int64)
        for interface_index in np.unique(global_interface):
            selected = global_interface == interface_index
            interface = self.interfaces[int(interface_index)]
            timestamp_ns[selected] = interface.to_ns(ticks[selected])
        timestamp_ns[is_spb[:count]] = 0

        if count:
            end = int(block_offset[-1] + block_len[-1])
            self._consume_to(end)
        self._next_frame_number += count
        return RecordChunk(
            buf=buf,
            data_offset=block_offset + data_start,
            cap_len=cap_len,
            frame_len=frame_len,
            timestamp_ns=timestamp_ns,
            interface_id=global_interface.astype(np.int32),
            link_type=link_types[global_interface] if count else np.zeros(0, np.int32),
        )

    def _block_error(self, reason: str, pos: int, records_before: int) -> CaptureError:
        byte_offset = self._stream.offset + (pos - self._stream.pos)
        return CaptureError(
            self._name,
            reason,
            frame_number=self._next_frame_number + records_before,
            byte_offset=byte_offset,
            action="The frames before it were kept; the rest of the file cannot be decoded.",
        )

    def _mark_truncated(self) -> None:
        self.truncated = True
        logger.warning(
            "%s: the file ends %d bytes into a block (byte offset %d, next frame %d); "
            "the frames before it are kept; copy the file again from its source to get the rest",
            self._name,
            self._stream.available,
            self._stream.offset,
            self._next_frame_number,
        )
