"""The Wireshark round trip: flagged frames as a commented pcapng, and a display filter.

An analyst opens ``flagged.pcapng`` to see only the frames netae flagged, each with
a frame comment giving the model, the window score and the threshold
(Wireshark shows it under "Packet comments" and filters on ``frame.comment``). The
display filter selects the same frames in the original capture, by the frame
numbers Wireshark gives them there.

The writer emits pcapng blocks directly: one Section Header Block, one Interface
Description Block per link type met, with nanosecond resolution (``if_tsresol`` =
9), and one Enhanced Packet Block per frame with one ``opt_comment`` option per
comment. Frame bytes come from the original capture through the decoder's pcap
and pcapng readers, gzip included.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from spark_jobs.decoder.decoder import DETECTION_BYTES, PCAPNG_MAGIC
from spark_jobs.decoder.errors import CaptureError
from spark_jobs.decoder.pcap import MAGICS as PCAP_MAGICS
from spark_jobs.decoder.pcap import PcapReader
from spark_jobs.decoder.pcapng import PcapngReader
from spark_jobs.decoder.source import ByteStream, open_source

logger = logging.getLogger(__name__)

SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 0x00000001
EPB_TYPE = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
SECTION_LENGTH_UNKNOWN = -1

OPTION_END = 0
OPTION_COMMENT = 1
OPTION_SHB_USERAPPL = 4
OPTION_IF_TSRESOL = 9
TSRESOL_NANOSECONDS = 9

MAX_OPTION_BYTES = 0xFFFF
"""An option's length field is 16 bits, so a longer comment is cut to this many bytes."""

WRITER_NAME = "netae"


@dataclass(frozen=True)
class CapturedFrame:
    """One frame of a capture with its bytes, as a pcap or pcapng record stores it.

    Attributes:
        frame_number: 1-based number in file order, as Wireshark numbers it.
        link_type: LINKTYPE_* value of the frame's interface.
        timestamp_ns: capture time, ns since the Unix epoch (UTC).
        frame_len: original length on the wire, bytes.
        data: the captured bytes (``len(data)`` is the captured length).
    """

    frame_number: int
    link_type: int
    timestamp_ns: int
    frame_len: int
    data: bytes


def read_frames(source: str | os.PathLike | BinaryIO, frame_numbers: Iterable[int], *, name: str | None = None) -> Iterator[CapturedFrame]:
    """Yield the frames of ``source`` whose numbers are in ``frame_numbers``, in file order.

    Reading stops after the highest requested frame, so an export from the start of a
    large capture does not read all of it.

    Args:
        source: a path, or a binary file object at the start of the capture.
        frame_numbers: 1-based frame numbers to keep.
        name: file name for error messages; defaults to the path.

    Raises:
        CaptureError: when the source is no pcap or pcapng file (a Wireshark CSV
            export contains no frame bytes), or when it is damaged before the last
            requested frame.
    """
    requested = set(int(number) for number in frame_numbers)
    if not requested:
        return
    last_requested = max(requested)
    if name is None:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<stream>"

    opened = open_source(source)
    try:
        stream = ByteStream(opened.stream)
        reader = _open_reader(stream, name)
        if not reader.read_header():
            raise reader.error
        frame_number = 0
        for chunk in reader.chunks():
            for index in range(len(chunk)):
                frame_number += 1
                if frame_number in requested:
                    start = int(chunk.data_offset[index])
                    yield CapturedFrame(
                        frame_number=frame_number,
                        link_type=int(chunk.link_type[index]),
                        timestamp_ns=int(chunk.timestamp_ns[index]),
                        frame_len=int(chunk.frame_len[index]),
                        data=chunk.buf[start:start + int(chunk.cap_len[index])].tobytes(),
                    )
                if frame_number >= last_requested:
                    return
        if reader.error is not None:
            raise reader.error
        logger.warning("%s ends after frame %d, but frames up to %d were requested", name, frame_number, last_requested)
    finally:
        opened.close()


def _open_reader(stream: ByteStream, name: str) -> PcapReader | PcapngReader:
    stream.fill(DETECTION_BYTES)
    magic = bytes(stream.buffer[stream.pos:stream.pos + 4])
    options = dict(first_frame_number=1, batch_frames=65_536)
    if magic in PCAP_MAGICS:
        return PcapReader(stream, name, **options)
    if magic == PCAPNG_MAGIC:
        return PcapngReader(stream, name, **options)
    raise CaptureError(
        name,
        f"Frames can only be exported from a pcap or pcapng capture; this one starts with bytes {magic.hex(' ')}.",
        byte_offset=0,
        action="A Wireshark CSV export contains no frame bytes: export the flagged frames from the original capture "
        "with the display filter instead.",
    )


def write_pcapng(frames: Iterable[CapturedFrame], comments: Mapping[int, list[str]], out: BinaryIO) -> int:
    """Write ``frames`` to ``out`` as a little-endian pcapng file with frame comments.

    Args:
        frames: frames to write, in the order they should appear.
        comments: frame number -> comments of that frame; each becomes one
            ``opt_comment`` option, cut to ``MAX_OPTION_BYTES`` bytes of UTF-8.
        out: binary file object to write to.

    Returns:
        The number of frames written.
    """
    out.write(_section_header_block())
    interfaces: dict[int, int] = {}
    written = 0
    for frame in frames:
        if frame.link_type not in interfaces:
            interfaces[frame.link_type] = len(interfaces)
            out.write(_interface_description_block(frame.link_type))
        out.write(_enhanced_packet_block(interfaces[frame.link_type], frame, comments.get(frame.frame_number, [])))
        written += 1
    return written


def display_filter(frame_numbers: Iterable[int]) -> str:
    """Return a Wireshark display filter that selects ``frame_numbers`` in the original capture.

    Runs of consecutive numbers become ranges: ``frame.number in {3..5, 9}``. The
    comma-separated set syntax needs Wireshark 4.0 or newer.

    Raises:
        ValueError: when ``frame_numbers`` is empty, because no filter selects nothing.
    """
    numbers = sorted(set(int(number) for number in frame_numbers))
    if not numbers:
        raise ValueError("frame_numbers is empty; a display filter needs at least one frame number")
    ranges: list[str] = []
    first = previous = numbers[0]
    for number in numbers[1:] + [None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        ranges.append(str(first) if first == previous else f"{first}..{previous}")
        if number is not None:
            first = previous = number
    return "frame.number in {" + ", ".join(ranges) + "}"


def _option(code: int, value: bytes) -> bytes:
    value = value[:MAX_OPTION_BYTES]
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _section_header_block() -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, SECTION_LENGTH_UNKNOWN)
    body += _option(OPTION_SHB_USERAPPL, WRITER_NAME.encode("utf-8")) + _option(OPTION_END, b"")
    return _block(SHB_TYPE, body)


def _interface_description_block(link_type: int) -> bytes:
    # snaplen 0 means no limit.
    body = struct.pack("<HHI", link_type, 0, 0)
    body += _option(OPTION_IF_TSRESOL, bytes([TSRESOL_NANOSECONDS])) + _option(OPTION_END, b"")
    return _block(IDB_TYPE, body)


def _enhanced_packet_block(interface_id: int, frame: CapturedFrame, comments: list[str]) -> bytes:
    timestamp = max(frame.timestamp_ns, 0)
    body = struct.pack(
        "<IIIII", interface_id, timestamp >> 32, timestamp & 0xFFFFFFFF, len(frame.data), max(frame.frame_len, len(frame.data))
    )
    body += frame.data + b"\x00" * (-len(frame.data) % 4)
    if comments:
        body += b"".join(_option(OPTION_COMMENT, comment.encode("utf-8")) for comment in comments)
        body += _option(OPTION_END, b"")
    return _block(EPB_TYPE, body)
