"""Opening a capture source as a bounded-memory byte stream, gzip included."""

from __future__ import annotations

import io
import os
import zlib
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"

# Bytes read from the source per refill. Large enough that per-read overhead is
# negligible, small enough that a decoder keeps a few of them at most.
READ_SIZE_BYTES = 4 * 1024 * 1024


class ByteStream:
    """A forward-only reader that keeps the unread tail of the input in one buffer.

    Readers call ``fill(n)`` until ``available >= n`` (or the input ends), work
    on ``buffer[pos:]``, then ``consume(k)``. ``offset`` is the position of
    ``buffer[pos]`` in the (decompressed) input, for error messages.
    """

    def __init__(self, raw: BinaryIO, read_size: int = READ_SIZE_BYTES) -> None:
        self._raw = raw
        self._read_size = read_size
        self.buffer = b""
        self.pos = 0
        self.offset = 0
        self.eof = False
        # True when a gzip stream ended before its end-of-stream marker.
        self.cut_short = False
        # The damage that ended a gzip stream early, or None.
        self.error: zlib.error | None = None

    @property
    def available(self) -> int:
        return len(self.buffer) - self.pos

    def fill(self, min_bytes: int) -> bool:
        """Read until at least ``min_bytes`` unread bytes are buffered.

        Returns:
            True when that many bytes are available, False when the input ended
            first (``available`` then contains whatever was left).
        """
        if self.available >= min_bytes:
            return True
        parts = [self.buffer[self.pos:]]
        have = len(parts[0])
        while have < min_bytes and not self.eof:
            # Fixed-size reads: a damaged length field that requests far more
            # than the file contains never makes the reader allocate that much.
            try:
                data = self._raw.read(self._read_size)
            except zlib.error as error:
                # The bytes before the damage stay readable, and the input ends here.
                self.error = error
                self.eof = True
                break
            if not data:
                self.cut_short = getattr(self._raw, "cut_short", False)
                self.eof = True
                break
            parts.append(data)
            have += len(data)
        non_empty = [part for part in parts if part]
        # A single part is used as it is, because joining would copy a whole read (4 MiB).
        self.buffer = non_empty[0] if len(non_empty) == 1 else b"".join(non_empty)
        self.pos = 0
        return have >= min_bytes

    def fill_more(self) -> bool:
        """Read one more block. Returns False when the input has ended."""
        return self.fill(self.available + 1)

    def consume(self, count: int) -> None:
        self.pos += count
        self.offset += count


class OpenedSource:
    """A readable byte stream over a capture, decompressed where it was gzip."""

    def __init__(self, stream: BinaryIO, compressed: bool, to_close: list[BinaryIO]) -> None:
        self.stream = stream
        self.compressed = compressed
        self._to_close = to_close

    def close(self) -> None:
        """Close what ``open_source`` opened; a caller's file object stays open."""
        for item in self._to_close:
            item.close()


def open_source(source: str | os.PathLike | BinaryIO) -> OpenedSource:
    """Open a path or wrap a binary file object, decompressing gzip on the fly.

    The gzip check uses the two magic bytes, never the file name.

    Raises:
        OSError: The path cannot be opened or read.
    """
    to_close: list[BinaryIO] = []
    if isinstance(source, (str, os.PathLike)):
        raw: BinaryIO = open(source, "rb")
        to_close.append(raw)
    else:
        raw = source

    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(_RawAdapter(raw))
    head = buffered.peek(2)[:2]
    if head == GZIP_MAGIC:
        return OpenedSource(GzipStream(buffered), True, to_close)
    return OpenedSource(buffered, False, to_close)


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader peek into a file object that only has read()."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        return count


class GzipStream:
    """Decompress gzip (one or more members) as a stream.

    ``gzip.GzipFile.read`` discards what it decompressed when the input ends
    before the end marker, so this reader drives ``zlib`` itself and keeps
    every byte it could decompress. ``cut_short`` is True once the input ended
    inside a member. Bytes after the last member that do not start another
    member (zero padding from some tools) are ignored.

    Damaged compressed data: ``zlib`` discards the output of a call that
    fails, so input is fed in slices. A failing slice is fed again from a copy
    of the decompressor, ``RECOVERY_SLICE_BYTES`` at a time, which recovers
    the output up to the damage. That output is returned first, and the next
    read raises.

    Raises:
        zlib.error: The compressed data is damaged.
    """

    COMPRESSED_READ_BYTES = 1024 * 1024
    SLICE_BYTES = 64 * 1024
    RECOVERY_SLICE_BYTES = 256

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._decompressor = zlib.decompressobj(wbits=31)
        # The last compressed read, and the position of its first byte not yet fed to zlib.
        self._input = b""
        self._input_pos = 0
        # The decompressor and input position before the last slice, to feed it again.
        self._before_slice = (self._decompressor, 0)
        self._in_member = False
        self._finished = False
        self._error: zlib.error | None = None
        self.cut_short = False

    @property
    def _pending(self) -> int:
        return len(self._input) - self._input_pos

    def read(self, size: int) -> bytes:
        if self._error is not None:
            raise self._error
        parts = []
        have = 0
        while have < size and not self._finished:
            if not self._pending:
                self._input = self._raw.read(self.COMPRESSED_READ_BYTES)
                self._input_pos = 0
                if not self._input:
                    self.cut_short = self._in_member
                    self._finished = True
                    break
            if not self._in_member and not self._input.startswith(GZIP_MAGIC[:self._pending], self._input_pos):
                self._finished = True
                break
            self._in_member = True
            try:
                output = self._decompress_slice(size - have, self.SLICE_BYTES)
            except zlib.error as error:
                output, self._error = self._recover(size - have), error
                self._finished = True
            if self._decompressor.eof:
                # Another member may follow, as `cat a.gz b.gz` makes.
                self._decompressor = zlib.decompressobj(wbits=31)
                self._in_member = False
            parts.append(output)
            have += len(output)
        if self._error is not None and not have:
            raise self._error
        return b"".join(parts)

    def _decompress_slice(self, max_output: int, slice_bytes: int) -> bytes:
        """Decompress up to ``slice_bytes`` of the pending input and advance past what zlib used."""
        start = self._input_pos
        piece = memoryview(self._input)[start:start + slice_bytes]
        self._before_slice = (self._decompressor.copy(), start)
        output = self._decompressor.decompress(piece, max_output)
        # Input zlib did not use: held back by max_output, or after the end of a member.
        unused = len(self._decompressor.unconsumed_tail) + len(self._decompressor.unused_data)
        self._input_pos = start + len(piece) - unused
        return output

    def _recover(self, max_output: int) -> bytes:
        """Feed the failed slice again in small pieces; return the output before the damage."""
        self._decompressor, self._input_pos = self._before_slice
        stop = self._input_pos + min(self._pending, self.SLICE_BYTES)
        parts = []
        have = 0
        while have < max_output and self._input_pos < stop and not self._decompressor.eof:
            try:
                output = self._decompress_slice(max_output - have, self.RECOVERY_SLICE_BYTES)
            except zlib.error:
                break
            parts.append(output)
            have += len(output)
        return b"".join(parts)
