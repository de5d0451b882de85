"""The one exception type for damaged or unsupported capture input."""

from __future__ import annotations


class CaptureError(Exception):
    """Damaged or unsupported capture input.

    The decoder never raises this from ``CaptureDecoder.batches()``. It stores it
    in ``DecodeSummary.error`` after yielding every frame before the fault, so a
    batch job can set the capture aside with its reason and go on.

    Attributes:
        path: File name as the caller gave it (or ``"<stream>"``).
        frame_number: 1-based number of the frame whose record is damaged, or
            None where the fault is not inside a frame record (file header).
        byte_offset: Offset of the damaged record or header from the start of
            the decompressed capture, in bytes, or None where unknown.
        reason: What is wrong, in one sentence.
        action: What the user can do about it.
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        frame_number: int | None = None,
        byte_offset: int | None = None,
        action: str = "Check that the file is a complete pcap, pcapng or Wireshark CSV export.",
    ) -> None:
        self.path = path
        self.frame_number = frame_number
        self.byte_offset = byte_offset
        self.reason = reason
        self.action = action
        super().__init__(self._message())

    def _message(self) -> str:
        where = [self.path]
        if self.frame_number is not None:
            where.append(f"frame {self.frame_number}")
        if self.byte_offset is not None:
            where.append(f"byte offset {self.byte_offset}")
        return f"{', '.join(where)}: {self.reason} {self.action}"

    def __reduce__(self):
        # Keyword-only arguments need an explicit recipe so that the error
        # survives pickling between Spark executors and the driver.
        return (
            _rebuild_capture_error,
            (self.path, self.reason, self.frame_number, self.byte_offset, self.action),
        )


def _rebuild_capture_error(path, reason, frame_number, byte_offset, action) -> CaptureError:
    return CaptureError(
        path, reason, frame_number=frame_number, byte_offset=byte_offset, action=action
    )
