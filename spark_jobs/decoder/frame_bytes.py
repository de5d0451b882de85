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
    captured length. An unchecked read (``checked=False``) skips that test, for
    fields inside a header whose capture the caller has already verified. It
    never reads outside the buffer, but rows that fail the caller's test get
    meaningless values, which the caller must mask.
    """

    def __init__(
        self, buf: np.ndarray, start: np.ndarray, cap_len: np.ndarray, views: dict | None = None
    ) -> None:
        self.buf = buf
        self.start = start
        self.cap_len = cap_len
        self._last_index = len(buf) - 1
        # Integer views of the buffer at every byte offset (stride 1), so that
        # one gather reads a whole 16- or 32-bit field; shared with subsets.
        self._views = {} if views is None else views

    def __len__(self) -> int:
        return len(self.start)

    def subset(self, rows: np.ndarray) -> FrameBytes:
        """Restrict to the frames at ``rows`` (sorted, distinct int indices)."""
        if len(rows) == len(self.start):
            return self
        return FrameBytes(self.buf, self.start[rows], self.cap_len[rows], self._views)

    def _view(self, dtype: str) -> np.ndarray:
        view = self._views.get(dtype)
        if view is None:
            width = np.dtype(dtype).itemsize
            view = np.ndarray(
                shape=(max(len(self.buf) - width + 1, 0),), dtype=dtype, buffer=self.buf, strides=(1,)
            )
            self._views[dtype] = view
        return view

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
        value = self._view("<u2" if little else ">u2")[index].astype(np.int64)
        return value if ok is None else np.where(ok, value, MISSING)

    def u32(self, pos: np.ndarray | int, *, little: bool = False, checked: bool = True) -> np.ndarray:
        index, ok = self._index(pos, 4, checked)
        value = self._view("<u4" if little else ">u4")[index].astype(np.int64)
        return value if ok is None else np.where(ok, value, MISSING)

    def raw16(self, pos: np.ndarray) -> np.ndarray:
        """Copy the 16 bytes at ``pos`` per frame into one contiguous bytes-like array.

        Unchecked, as for the integer reads. One 16-byte gather per frame is
        several times faster than ``rows_of``'s sixteen one-byte gathers.
        """
        index, _ = self._index(pos, 16, checked=False)
        return np.ascontiguousarray(self._view("V16")[index])

    def rows_of(self, pos: np.ndarray, width: int, *, checked: bool = True) -> np.ndarray:
        """Copy ``width`` bytes at ``pos`` per frame into [n, width] uint8.

        Checked: bytes that were not captured (or where ``pos`` is negative)
        read as 0, and callers that need all ``width`` bytes check
        ``has(pos, width)``. Unchecked: as for the integer reads.
        """
        column = np.arange(width, dtype=np.int64)[None, :]
        if not checked:
            index, _ = self._index(pos, width, checked=False)
            return self.buf[index[:, None] + column]
        relative = pos[:, None] + column
        valid = (pos[:, None] >= 0) & (relative < self.cap_len[:, None])
        index = np.where(valid, self.start[:, None] + relative, 0)
        rows = self.buf[index]
        rows[~valid] = 0
        return rows
