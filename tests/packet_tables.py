"""Synthetic packet tables with the real packet schema, for tests that need no capture."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from spark_jobs.packet_schema import PACKET_SCHEMA


def synthetic_packets(capture_id: str, frames: int, *, seed: int = 0, start_ns: int = 1_733_300_000_000_000_000,
                      labels: np.ndarray | None = None) -> pa.Table:
    """Return ``frames`` TCP/UDP rows between a few hosts, in the packet schema."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(1_000, 5_000_000, size=frames)
    gaps[0] = 0
    times = start_ns + np.cumsum(gaps)
    tcp = rng.random(frames) < 0.7
    hosts = np.array(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
    columns = {name: [None] * frames for name in PACKET_SCHEMA.names}
    columns.update(
        capture_id=[capture_id] * frames,
        frame_number=np.arange(1, frames + 1),
        timestamp_ns=times,
        inter_arrival_ns=gaps,
        timestamp_backwards=[False] * frames,
        interface_id=[0] * frames,
        link_type=[1] * frames,
        frame_len=rng.integers(60, 1514, size=frames).astype(np.int32),
        snaplen_cut=[False] * frames,
        malformed=[False] * frames,
        src_addr=hosts[rng.integers(0, 4, size=frames)],
        dst_addr=hosts[rng.integers(0, 4, size=frames)],
        ip_version=[4] * frames,
        ip_proto=np.where(tcp, 6, 17).astype(np.int16),
        ttl=[64] * frames,
        src_port=rng.integers(1024, 65535, size=frames).astype(np.int32),
        dst_port=np.where(tcp, 443, 53).astype(np.int32),
        tcp_flags=np.where(tcp, 0x18, None),
        payload_len=rng.integers(0, 1400, size=frames).astype(np.int32),
        protocol=np.where(tcp, "TLS", "DNS"),
        label=labels if labels is not None else [None] * frames,
    )
    columns["cap_len"] = columns["frame_len"]
    return pa.Table.from_pydict(columns, schema=PACKET_SCHEMA)
