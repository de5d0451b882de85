"""Wireshark's CSV export of packet dissections (File > Export Packet Dissections > As CSV).

The export has one row per frame with the columns No., Time, Source,
Destination, Protocol, Length and Info. It carries no link layer and no raw
bytes, so the decoder fills what these columns give and leaves the rest null:

* ``timestamp_ns``: the default Time column is seconds relative to the first
  frame, so timestamps are stored as that offset from the Unix epoch
  (1970-01-01T00:00:00Z plus the relative time). A Time column in epoch
  seconds (values of 10^9 and more) is taken as absolute. A date-time column
  ("2024-12-04 08:13:20.123456") is read as UTC, because the export does not
  say which time zone Wireshark displayed.
* ``frame_number``: the export's No. column, which keeps Wireshark's numbers
  even when the export was filtered.
* ``src_addr``/``dst_addr``: the Source and Destination text as exported, which
  may be a resolved name such as ``Broadcast``. ``ip_version`` is set where the
  text is an IPv4 or IPv6 address, and ``src_mac``/``dst_mac`` where it is a MAC.
* ``frame_len`` and ``cap_len``: the Length column.
* ``link_type``: -1, because the export does not say.
* Ports, TCP flags, window and payload length: parsed from the Info text
  where it has Wireshark's TCP/UDP summary (``40000 → 443 [SYN] ... Win=64240
  Len=0``); ``ip_proto`` is 6 or 17 only where the Protocol column says TCP or UDP
  or the Info text has a TCP sequence number.
"""

from __future__ import annotations

import csv
import ipaddress
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timezone

import pyarrow as pa

from spark_jobs.decoder.errors import CaptureError
from spark_jobs.decoder.source import ByteStream
from spark_jobs.packet_schema import PACKET_SCHEMA

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("No.", "Time", "Source", "Destination", "Protocol", "Length")
CSV_LINK_TYPE = -1
EPOCH_SECONDS_THRESHOLD = 1_000_000_000

MAC_PATTERN = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
PORTS_PATTERN = re.compile(r"^\s*(\d{1,5})\s*(?:→|>|->)\s*(\d{1,5})\b")
FLAGS_PATTERN = re.compile(r"\[((?:FIN|SYN|RST|PSH|ACK|URG|ECE|CWR|NS)(?:, (?:FIN|SYN|RST|PSH|ACK|URG|ECE|CWR|NS))*)\]")
WINDOW_PATTERN = re.compile(r"\bWin=(\d+)")
LENGTH_PATTERN = re.compile(r"\bLen=(\d+)")
TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
                 "ECE": 0x40, "CWR": 0x80, "NS": 0x100}


def looks_like_wireshark_csv(head: bytes) -> bool:
    """True when the first line is a Wireshark CSV header: ``"No.","Time",...``.

    Wireshark quotes every field of its export, so an unquoted line such as
    ``No.,Time,...`` is some other CSV file and is not accepted.
    """
    first_line = head.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf").strip()
    return first_line.startswith(b'"No.","Time"')


def _parse_time_ns(text: str) -> int:
    """Parse the Time column into ns; see the module docstring for the rules."""
    text = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        negative = text.startswith("-")
        whole, _, fraction = text.lstrip("-").partition(".")
        value = int(whole) * 1_000_000_000 + int((fraction + "000000000")[:9])
        return -value if negative else value
    parsed = datetime.fromisoformat(text.replace(",", "."))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    delta = parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


# Timestamps stay within +-2^62 ns (about 146 years from 1970), so the
# difference of two of them still fits the int64 inter_arrival_ns column.
MAX_ABS_TIMESTAMP_NS = 1 << 62


def _check_ranges(values: dict) -> None:
    """Raise ValueError when a parsed number does not fit its packet-schema column or is negative."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or name == "timestamp_ns":
            continue
        bits = PACKET_SCHEMA.field(name).type.bit_width
        if not 0 <= value < 1 << (bits - 1):
            raise ValueError(f"{name} {value} is outside 0..{(1 << (bits - 1)) - 1}")
    if abs(values["timestamp_ns"]) >= MAX_ABS_TIMESTAMP_NS:
        raise ValueError(f"time {values['timestamp_ns']} ns is more than 2^62 ns from 1970-01-01")


def _ip_version(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


class WiresharkCsvReader:
    """Stream a Wireshark CSV export as packet-schema record batches."""

    def __init__(
        self, stream: ByteStream, name: str, *, capture_id: str, first_frame_number: int, batch_frames: int
    ) -> None:
        self._stream = stream
        self._name = name
        self._capture_id = capture_id
        self._batch_frames = batch_frames
        self.truncated = False
        self.error: CaptureError | None = None
        self._previous_ns: int | None = None
        self._line_offsets: list[int] = []

    def read_header(self) -> bool:
        return True

    def _lines(self) -> Iterator[str]:
        stream = self._stream
        while True:
            end = stream.buffer.find(b"\n", stream.pos)
            if end < 0:
                if stream.fill_more():
                    continue
                if stream.available:
                    self._line_offsets.append(stream.offset)
                    line = stream.buffer[stream.pos:]
                    stream.consume(len(line))
                    yield line.decode("utf-8-sig", errors="replace")
                return
            line = stream.buffer[stream.pos:end + 1]
            self._line_offsets.append(stream.offset)
            stream.consume(len(line))
            yield line.decode("utf-8-sig", errors="replace")

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows = csv.reader(self._lines())
        try:
            header = next(rows)
        except csv.Error as error:
            self.error = CaptureError(self._name, f"The CSV header cannot be read ({error}).", byte_offset=0)
            return
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            self.error = CaptureError(
                self._name,
                f"The CSV header lacks the column(s) {', '.join(missing)}.",
                byte_offset=0,
                action="Export with Wireshark's default columns (No., Time, Source, Destination, "
                "Protocol, Length, Info).",
            )
            return
        index = {column: header.index(column) for column in header}
        pending: list[dict] = []
        last_frame_number = 0
        while True:
            try:
                row = next(rows, None)
                if row is None:
                    break
                if not row:
                    continue
                values = self._parse_row(row, index)
                # A filtered export skips numbers, but numbers that repeat or go back
                # would give two rows of one capture the same frame number.
                if values["frame_number"] <= last_frame_number:
                    raise ValueError(
                        f"frame number {values['frame_number']} is not above the previous row's {last_frame_number}"
                    )
                pending.append(values)
                last_frame_number = values["frame_number"]
            except (ValueError, IndexError, csv.Error) as error:
                self.error = CaptureError(
                    self._name,
                    f"CSV line {rows.line_num} cannot be read as a frame ({error}).",
                    frame_number=last_frame_number + 1,
                    byte_offset=self._line_offsets[-1] if self._line_offsets else None,
                    action="The rows before it were kept; re-export the capture from Wireshark.",
                )
                break
            if len(pending) == self._batch_frames:
                yield self._to_batch(pending)
                pending = []
        if pending:
            yield self._to_batch(pending)

    def _parse_row(self, row: list[str], index: dict[str, int]) -> dict:
        source = row[index["Source"]].strip()
        destination = row[index["Destination"]].strip()
        protocol = row[index["Protocol"]].strip()
        info = row[index["Info"]] if "Info" in index and index["Info"] < len(row) else ""
        length = int(row[index["Length"]])
        values = {
            "frame_number": int(row[index["No."]]),
            "timestamp_ns": _parse_time_ns(row[index["Time"]]),
            "frame_len": length,
            "src_addr": source or None,
            "dst_addr": destination or None,
            "protocol": protocol,
        }
        src_version = _ip_version(source)
        dst_version = _ip_version(destination)
        values["ip_version"] = src_version if src_version == dst_version else None
        values["src_mac"] = source if MAC_PATTERN.match(source) else None
        values["dst_mac"] = destination if MAC_PATTERN.match(destination) else None

        ports = PORTS_PATTERN.match(info)
        if ports and values["ip_version"] is not None:
            values["src_port"], values["dst_port"] = int(ports.group(1)), int(ports.group(2))
        is_tcp = protocol == "TCP" or "Seq=" in info
        flags = FLAGS_PATTERN.search(info) if is_tcp else None
        if flags:
            values["tcp_flags"] = sum(TCP_FLAG_BITS[name] for name in flags.group(1).split(", "))
        window = WINDOW_PATTERN.search(info) if is_tcp else None
        if window:
            values["tcp_window"] = int(window.group(1))
        payload = LENGTH_PATTERN.search(info) if ports else None
        if payload:
            values["payload_len"] = int(payload.group(1))
        if is_tcp and values["ip_version"] is not None:
            values["ip_proto"] = 6
        elif protocol == "UDP" and values["ip_version"] is not None:
            values["ip_proto"] = 17
        _check_ranges(values)
        return values

    def _to_batch(self, rows: list[dict]) -> pa.RecordBatch:
        count = len(rows)
        timestamps = [row["timestamp_ns"] for row in rows]
        gaps = []
        backwards = []
        previous = self._previous_ns
        for timestamp in timestamps:
            gap = 0 if previous is None else timestamp - previous
            gaps.append(max(gap, 0))
            backwards.append(gap < 0)
            previous = timestamp
        self._previous_ns = previous

        def column(name: str) -> list:
            return [row.get(name) for row in rows]

        ip_version = column("ip_version")
        arrays = {
            "capture_id": pa.repeat(pa.scalar(self._capture_id, pa.string()), count),
            "frame_number": pa.array(column("frame_number"), pa.int64()),
            "timestamp_ns": pa.array(timestamps, pa.int64()),
            "inter_arrival_ns": pa.array(gaps, pa.int64()),
            "timestamp_backwards": pa.array(backwards, pa.bool_()),
            "interface_id": pa.array([0] * count, pa.int32()),
            "link_type": pa.array([CSV_LINK_TYPE] * count, pa.int32()),
            "frame_len": pa.array(column("frame_len"), pa.int32()),
            "cap_len": pa.array(column("frame_len"), pa.int32()),
            "snaplen_cut": pa.array([False] * count, pa.bool_()),
            "malformed": pa.array([False] * count, pa.bool_()),
        }
        for field in PACKET_SCHEMA:
            if field.name not in arrays:
                arrays[field.name] = pa.array(column(field.name), field.type)
        arrays["is_fragment"] = pa.array([None if v is None else False for v in ip_version], pa.bool_())
        return pa.RecordBatch.from_arrays([arrays[f.name] for f in PACKET_SCHEMA], schema=PACKET_SCHEMA)
