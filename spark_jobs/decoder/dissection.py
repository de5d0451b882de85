"""Per-frame fields filled in layer by layer, one numpy array per field."""

from __future__ import annotations

import numpy as np

from spark_jobs.decoder.frame_bytes import MISSING, FrameBytes
from spark_jobs.decoder.protocol_table import NameTable

# Fields held as int64 with MISSING for null. Positions (``*_pos``, ``*_off``)
# are byte offsets from the frame's first byte.
INT_FIELDS = (
    "src_mac_pos",
    "dst_mac_pos",
    "vlan_id",
    "inner_vlan_id",
    "eth_type",
    "net_off",
    "net_type",
    "ip_version",
    "src_ip_pos",
    "dst_ip_pos",
    "ip_proto",
    "ttl",
    "ip_id",
    "l4_off",
    "l4_len",
    "src_port",
    "dst_port",
    "tcp_flags",
    "tcp_window",
    "icmp_type",
    "icmp_code",
    "payload_off",
    "payload_len",
    "payload_word",
    "link_name",
)


class Dissection:
    """Arrays of decoded fields for the n frames of one record chunk.

    ``link_name`` contains a protocol-name code (see ``protocol_names``) set by the
    link layer for frames that carry no network layer the decoder reads
    (802.11 management frames, STP, an unsupported link type); the final
    protocol name is decided once all layers are read.
    """

    def __init__(self, frames: FrameBytes, link_type: np.ndarray, frame_len: np.ndarray) -> None:
        count = len(frames)
        self.frames = frames
        self.link_type = link_type
        self.frame_len = frame_len
        self.names = NameTable()
        for name in INT_FIELDS:
            setattr(self, name, np.full(count, MISSING, dtype=np.int64))
        self.malformed = np.zeros(count, dtype=bool)
        self.is_fragment = np.zeros(count, dtype=bool)
        # False for IPv4/IPv6 fragments after the first: they carry no transport header.
        self.first_fragment = np.ones(count, dtype=bool)

    def __len__(self) -> int:
        return len(self.frames)

    def assign(self, rows: np.ndarray, **values: np.ndarray) -> None:
        """Store ``values`` (each aligned with ``rows``) into the named fields at ``rows``."""
        for name, value in values.items():
            getattr(self, name)[rows] = value
