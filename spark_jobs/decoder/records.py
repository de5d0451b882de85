"""A block of capture records, as arrays, handed from a file-format reader to the dissector."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# No link layer carries frames this large. A record header that claims more is
# damage, and the readers stop before allocating anything of that size.
MAX_CAP_LEN_BYTES = 256 * 1024 * 1024


@dataclass
class RecordChunk:
    """Up to ``batch_frames`` consecutive frames whose bytes sit in one buffer.

    Attributes:
        buf: The raw bytes holding the frames, dtype uint8.
        data_offset: Index in ``buf`` of each frame's first byte, int64 [n].
        cap_len: Bytes of each frame present in the file, int64 [n].
        frame_len: Original wire length of each frame, int64 [n].
        timestamp_ns: Capture time, ns since the Unix epoch (UTC), int64 [n].
        interface_id: Interface index (0 for classic pcap), int32 [n].
        link_type: LINKTYPE_* value of each frame's interface, int32 [n].
    """

    buf: np.ndarray
    data_offset: np.ndarray
    cap_len: np.ndarray
    frame_len: np.ndarray
    timestamp_ns: np.ndarray
    interface_id: np.ndarray
    link_type: np.ndarray

    def __len__(self) -> int:
        return len(self.data_offset)


def gather_rows(buf: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Copy ``width`` bytes starting at each offset into a [n, width] uint8 array.

    The caller guarantees that every ``offset + width`` lies inside ``buf``.
    """
    index = offsets[:, None] + np.arange(width, dtype=np.int64)[None, :]
    return buf[index]
