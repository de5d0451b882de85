"""Vectorised reads of header fields from many frames at once.

The decoder never loops over frames in Python: at a few million frames per
second a per-frame loop would cost more than everything else together. Instead
each header field is one numpy gather (fancy indexing) over the frames' data
offsets, and layer decisions are boolean masks.
"""

from __future__ import annotations

import numpy as np

# Sentinel for "not present": every field the decoder reads is non-negative.
MISSING = -1


class FrameBytes:
    """Read big- and little-endian integers at per-frame positions.

    Every read takes positions relative to each frame's first byte (an int64
    array, or one int for all frames). A checked read returns ``MISSING``
    where the position is negative or the bytes lie beyond the frame's
    captured length. An unchecked read (``checked=False``) skips that test for
    fields inside a header whose capture the caller has already verified; it
    never reads outside the buffer, but rows that fail the caller's test get
    meaningless values that the caller must mask.
    """

    def __init__(self, buf: np.ndarray, start: np.ndarray, cap_len: np.ndarray) -> None:
        self.buf = buf
        self.start = start
        self.cap_len = cap_len
        self._last_index = len(buf) - 1

    def __len__(self) -> int:
        return len(self.start)

    def subset(self, rows: np.ndarray) -> FrameBytes:
        """Restrict to the frames at ``rows`` (sorted, distinct int indices)."""
        if len(rows) == len(self.start):
            return self
        return FrameBytes(self.buf, self.start[rows], self.cap_len[rows])

    def has(self, pos: np.ndarray | int, width: int) -> np.ndarray:
        """True where ``width`` bytes at ``pos`` were captured."""
        return (pos >= 0) & (pos + width <= self.cap_len)

    def _index(self, pos: np.ndarray | int, width: int, checked: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if checked:
            ok = self.has(pos, width)
            return np.where(ok, self.start + pos, 0), ok
        return np.minimum(self.start + pos, self._last_index - (width - 1)), None

    def u8(self, pos: np.ndarray | int, *, checked: bool = True) -> np.ndarray:
        index, ok = self._index(pos, 1, checked)
        value = self.buf[index].astype(np.int64)
        return value if ok is None else np.where(ok, value, MISSING)

    def u16(self, pos: np.ndarray | int, *, little: bool = False, checked: bool = True) -> np.ndarray:
        index, ok = self._index(pos, 2, checked)
        first = self.buf[index].astype(np.int64)
        second = self.buf[index + 1].astype(np.int64)
        value = (second << 8) | first if little else (first << 8) | second
        return value if ok is None else np.where(ok, value, MISSING)

    def u32(self, pos: np.ndarray | int, *, little: bool = False, checked: bool = True) -> np.ndarray:
        index, ok = self._index(pos, 4, checked)
        value = self.buf[index].astype(np.int64)
        for byte_index in (1, 2, 3):
            value = (value << 8) | self.buf[index + byte_index]
        if little:
            value = (
                ((value & 0xFF) << 24) | ((value & 0xFF00) << 8) | ((value >> 8) & 0xFF00) | (value >> 24)
            )
        return value if ok is None else np.where(ok, value, MISSING)

    def rows_of(self, pos: np.ndarray, width: int) -> np.ndarray:
        """Copy ``width`` bytes at ``pos`` per frame into [n, width] uint8.

        Bytes that were not captured (or where ``pos`` is negative) read as 0;
        callers that need all ``width`` bytes check ``has(pos, width)``.
        """
        column = np.arange(width, dtype=np.int64)[None, :]
        relative = pos[:, None] + column
        valid = (pos[:, None] >= 0) & (relative < self.cap_len[:, None])
        index = np.where(valid, self.start[:, None] + relative, 0)
        rows = self.buf[index]
        rows[~valid] = 0
        return rows
