"""Frame labels from a labels file.

A labels file is CSV with the header ``first_frame,last_frame,label,attack``.
Each row marks the inclusive range of 1-based frame numbers ``first_frame`` to
``last_frame`` with ``label`` ``anomaly`` (or ``1``) or ``normal`` (or ``0``);
``attack`` names the attack and may be empty. Frames that no row covers are
normal. When a capture has no labels file, every frame's label is null.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

REQUIRED_COLUMNS = ("first_frame", "last_frame", "label")
_LABEL_VALUES = {"anomaly": 1, "anomalous": 1, "1": 1, "normal": 0, "benign": 0, "0": 0}


class LabelsError(ValueError):
    """A labels file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class FrameRange:
    """An inclusive range of frame numbers with one label."""

    first_frame: int
    last_frame: int
    label: int
    attack: str


def parse_labels(text: str, *, source: str) -> list[FrameRange]:
    """Parse a labels file.

    Args:
        text: the file's content.
        source: the file's name or location, for error messages.

    Raises:
        LabelsError: naming ``source``, the line number and the problem.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise LabelsError(
            f"{source}: missing column(s) {', '.join(missing)}; "
            "the header must be first_frame,last_frame,label,attack"
        )
    ranges = []
    for line_number, row in enumerate(reader, start=2):
        try:
            first, last = int(row["first_frame"]), int(row["last_frame"])
        except (TypeError, ValueError):
            raise LabelsError(f"{source}, line {line_number}: frame numbers must be integers") from None
        if first < 1 or last < first:
            raise LabelsError(
                f"{source}, line {line_number}: invalid range {first}-{last}; "
                "frames start at 1 and last_frame must not be below first_frame"
            )
        label = _LABEL_VALUES.get((row["label"] or "").strip().lower())
        if label is None:
            raise LabelsError(
                f"{source}, line {line_number}: invalid label {row['label']!r}; use anomaly or normal"
            )
        ranges.append(FrameRange(first, last, label, (row.get("attack") or "").strip()))
    return ranges


def label_frames(frame_numbers: np.ndarray, ranges: list[FrameRange]) -> np.ndarray:
    """Return the int8 label of each frame number: 1 inside an anomaly range, else 0.

    A later row overrides an earlier one where ranges overlap.
    """
    labels = np.zeros(len(frame_numbers), dtype=np.int8)
    for frame_range in ranges:
        inside = (frame_numbers >= frame_range.first_frame) & (frame_numbers <= frame_range.last_frame)
        labels[inside] = frame_range.label
    return labels
