"""Frame labels from a labels file.

A labels file is CSV in one of two forms, told apart by its header.

Frame ranges, header ``first_frame,last_frame,label,attack``: each row marks the
inclusive range of 1-based frame numbers ``first_frame`` to ``last_frame``.

Host and time ranges, header ``host,start_time,end_time,label,attack``: each row
marks the frames whose source or destination address equals ``host`` and whose
time lies in ``[start_time, end_time]``, both ends included. ``host`` is an IP
address (compared in its canonical form, so ``2001:DB8::1`` matches
``2001:db8::1``) or a MAC address. Times are ISO-8601 (``2024-12-04T08:00:00Z``;
an offset is converted to UTC and a time without one is read as UTC) or epoch
seconds with up to nine decimals (``1733299200.5``).

In both forms ``label`` is ``anomaly`` (or ``1``) or ``normal`` (or ``0``) and
``attack`` names the attack and may be empty. Frames that no row covers are
normal, and a later row overrides an earlier one where rows overlap. When a
capture has no labels file, every frame's label is null.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("first_frame", "last_frame", "label")
HOST_TIME_COLUMNS = ("host", "start_time", "end_time", "label")
_LABEL_VALUES = {"anomaly": 1, "anomalous": 1, "1": 1, "normal": 0, "benign": 0, "0": 0}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LabelsError(ValueError):
    """A labels file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class FrameRange:
    """An inclusive range of frame numbers with one label."""

    first_frame: int
    last_frame: int
    label: int
    attack: str


@dataclass(frozen=True)
class HostTimeRange:
    """Frames to or from one host within an inclusive time range, with one label.

    Attributes:
        host: canonical IP address, or lower-case MAC address.
        start_ns: first time covered, nanoseconds since the Unix epoch, UTC.
        end_ns: last time covered, same unit.
        label: 1 anomalous, 0 normal.
        attack: name of the attack; may be empty.
    """

    host: str
    start_ns: int
    end_ns: int
    label: int
    attack: str


LabelRange = FrameRange | HostTimeRange


def canonical_host(host: str) -> str:
    """Return an IP address in canonical form, or anything else stripped and lower-cased."""
    text = host.strip()
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return text.lower()


def parse_time_ns(text: str) -> int:
    """Parse ISO-8601 or epoch seconds into nanoseconds since the epoch, UTC.

    Raises:
        ValueError: when ``text`` is neither.
    """
    value = text.strip()
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        seconds = None
    if seconds is not None:
        if not seconds.is_finite():
            raise ValueError(f"time {text!r} is not finite")
        return int(seconds * 1_000_000_000)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _label_value(row: dict, source: str, line_number: int) -> int:
    label = _LABEL_VALUES.get((row["label"] or "").strip().lower())
    if label is None:
        raise LabelsError(f"{source}, line {line_number}: invalid label {row['label']!r}; use anomaly or normal")
    return label


def _frame_range(row: dict, source: str, line_number: int) -> FrameRange:
    try:
        first, last = int(row["first_frame"]), int(row["last_frame"])
    except (TypeError, ValueError):
        raise LabelsError(f"{source}, line {line_number}: frame numbers must be integers") from None
    if first < 1 or last < first:
        raise LabelsError(
            f"{source}, line {line_number}: invalid range {first}-{last}; "
            "frames start at 1 and last_frame must not be below first_frame"
        )
    return FrameRange(first, last, _label_value(row, source, line_number), (row.get("attack") or "").strip())


def _host_time_range(row: dict, source: str, line_number: int) -> HostTimeRange:
    host = (row["host"] or "").strip()
    if not host:
        raise LabelsError(f"{source}, line {line_number}: host is empty; give an IP or MAC address")
    times = []
    for column in ("start_time", "end_time"):
        try:
            times.append(parse_time_ns(row[column] or ""))
        except ValueError:
            raise LabelsError(
                f"{source}, line {line_number}: invalid {column} {row[column]!r}; "
                "use ISO-8601 (2024-12-04T08:00:00Z) or epoch seconds"
            ) from None
    if times[1] < times[0]:
        raise LabelsError(f"{source}, line {line_number}: end_time {row['end_time']!r} is before start_time {row['start_time']!r}")
    label = _label_value(row, source, line_number)
    return HostTimeRange(canonical_host(host), times[0], times[1], label, (row.get("attack") or "").strip())


def parse_labels(text: str, *, source: str) -> list[LabelRange]:
    """Parse a labels file of either form.

    Args:
        text: the file's content.
        source: the file's name or location, for error messages.

    Returns:
        The rows in file order: ``FrameRange`` or ``HostTimeRange`` items.

    Raises:
        LabelsError: naming ``source``, the line number and the problem.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    if "host" in header:
        required, parse_row = HOST_TIME_COLUMNS, _host_time_range
    else:
        required, parse_row = REQUIRED_COLUMNS, _frame_range
    missing = [column for column in required if column not in header]
    if missing:
        raise LabelsError(
            f"{source}: missing column(s) {', '.join(missing)}; the header must be "
            "first_frame,last_frame,label,attack or host,start_time,end_time,label,attack"
        )
    return [parse_row(row, source, line_number) for line_number, row in enumerate(reader, start=2)]


def label_frames(frame_numbers: np.ndarray, ranges: list[FrameRange]) -> np.ndarray:
    """Return the int8 label of each frame number: 1 inside an anomaly range, else 0.

    A later row overrides an earlier one where ranges overlap.
    """
    labels = np.zeros(len(frame_numbers), dtype=np.int8)
    for frame_range in ranges:
        inside = (frame_numbers >= frame_range.first_frame) & (frame_numbers <= frame_range.last_frame)
        labels[inside] = frame_range.label
    return labels


def _canonical_addresses(addresses: np.ndarray) -> np.ndarray:
    """Return ``canonical_host`` of each address, "" where missing; each distinct value is parsed once."""
    series = pd.Series(addresses, dtype="object").fillna("")
    mapping = {value: canonical_host(value) if value else "" for value in series.unique()}
    return series.map(mapping).to_numpy(dtype=object)


def label_packets(
    frame_numbers: np.ndarray,
    timestamps_ns: np.ndarray,
    src_addrs: np.ndarray,
    dst_addrs: np.ndarray,
    ranges: list[LabelRange],
) -> np.ndarray:
    """Return the int8 label of each frame under rows of either form, applied in file order.

    Args:
        frame_numbers: 1-based frame numbers, shape [frames].
        timestamps_ns: frame times, nanoseconds since the epoch, shape [frames].
        src_addrs: source addresses (None where missing), shape [frames].
        dst_addrs: destination addresses, shape [frames].
        ranges: rows from ``parse_labels``.
    """
    labels = np.zeros(len(frame_numbers), dtype=np.int8)
    sources = dst = None
    for item in ranges:
        if isinstance(item, FrameRange):
            inside = (frame_numbers >= item.first_frame) & (frame_numbers <= item.last_frame)
        else:
            if sources is None:
                sources, dst = _canonical_addresses(src_addrs), _canonical_addresses(dst_addrs)
            in_time = (timestamps_ns >= item.start_ns) & (timestamps_ns <= item.end_ns)
            inside = in_time & ((sources == item.host) | (dst == item.host))
        labels[inside] = item.label
    return labels
