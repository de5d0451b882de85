"""The ``flow`` feature set: one row per flow, for flow-level scoring.

A flow is the frames of one capture and split that share a ``flow_key`` and
follow each other with gaps of at most ``FLOW_IDLE_TIMEOUT_S``. Flows are cut
where the split changes, so no flow's statistics mix training frames with
validation or test frames. The initiator is the source of the flow's first
frame; ``src2dst`` columns count frames sent by the initiator's address and
port, ``dst2src`` columns the rest. Column names follow NFStream's.

NOTE: TCP FIN and RST do not end a flow. Only the idle timeout and the split
boundary do, so a socket reused within the timeout continues the same flow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.features import UNSPLIT, FeatureSet, category_strings, numeric_column

FLOW_IDLE_TIMEOUT_S = 120.0

# TCP flag bits counted per flow.
TCP_FLAG_BITS: dict[str, int] = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}

FLOW_NUMERIC_FEATURES: tuple[str, ...] = (
    "bidirectional_duration_ms",
    "src2dst_packets",
    "dst2src_packets",
    "src2dst_bytes",
    "dst2src_bytes",
    *(f"bidirectional_{name}_packets" for name in TCP_FLAG_BITS),
    "bidirectional_mean_piat_ms",
    "bidirectional_stddev_piat_ms",
    "bidirectional_min_piat_ms",
    "bidirectional_max_piat_ms",
    "bidirectional_mean_ps",
)
FLOW_CATEGORICAL_FEATURES: tuple[str, ...] = ("ip_proto", "protocol", "dst_port")


def flow_key(packets: pd.DataFrame) -> pd.Series:
    """Build the direction-agnostic flow key of each frame.

    The key has five members: the outer VLAN id, the transport protocol, and the
    two endpoints (address, port) in sorted order, so both directions of a
    conversation share one key. The members, joined by ``|``:

    * ``vlan_id``, or ``-`` for untagged frames;
    * ``ip_proto``, or ``eth:<EtherType>`` for frames without IP (ARP, LLDP);
    * the lower endpoint's address and port, then the higher endpoint's, where
      addresses are IP addresses, else MAC addresses, and a missing port is ``-``.

    NOTE: IP fragments after the first have no ports, so they get a key of their
    own, not the key of their datagram's first fragment.

    Args:
        packets: packet-table rows.

    Returns:
        A string Series with the same index as ``packets``.
    """
    vlan = category_strings(packets, "vlan_id").replace("", "-")
    proto = category_strings(packets, "ip_proto")
    ether = "eth:" + category_strings(packets, "eth_type")
    proto = proto.where(proto != "", ether)
    src = category_strings(packets, "src_addr") + "|" + category_strings(packets, "src_port").replace("", "-")
    dst = category_strings(packets, "dst_addr") + "|" + category_strings(packets, "dst_port").replace("", "-")
    lower = src.where(src <= dst, dst)
    upper = dst.where(src <= dst, src)
    return vlan + "|" + proto + "|" + lower + "|" + upper


def _flow_ids(keys: pd.Series, times_ns: np.ndarray) -> np.ndarray:
    """Number the flows: same key, and at most ``FLOW_IDLE_TIMEOUT_S`` since the key's previous frame."""
    codes = pd.factorize(keys)[0]
    order = np.lexsort((np.arange(len(codes)), codes))
    sorted_codes, sorted_times = codes[order], times_ns[order]
    new_flow = np.ones(len(codes), dtype=bool)
    new_flow[1:] = (sorted_codes[1:] != sorted_codes[:-1]) | (
        np.diff(sorted_times) > int(FLOW_IDLE_TIMEOUT_S * 1e9)
    )
    ids = np.empty(len(codes), dtype=np.int64)
    ids[order] = np.cumsum(new_flow) - 1
    return ids


def derive_flow_rows(packets: pd.DataFrame) -> pd.DataFrame:
    """Build ``flow`` feature rows for the packets of one capture and split, sorted by time.

    Returns:
        One row per flow, ordered by its first frame's time, with the columns of
        ``ROW_METADATA_COLUMNS`` (``host`` is the initiator's address), the numeric
        features of ``FLOW_NUMERIC_FEATURES`` and the categories of the first frame.
    """
    frame = pd.DataFrame(
        {
            "flow": _flow_ids(flow_key(packets), packets["timestamp_ns"].to_numpy(np.int64)),
            "frame_number": packets["frame_number"].to_numpy(np.int64),
            "time_ns": packets["timestamp_ns"].to_numpy(np.int64),
            "bytes": numeric_column(packets, "frame_len"),
            "flags": numeric_column(packets, "tcp_flags").astype(np.int64),
            "endpoint": category_strings(packets, "src_addr") + "|" + category_strings(packets, "src_port"),
            "label": pd.to_numeric(packets["label"], errors="coerce") if "label" in packets else np.nan,
        }
    )
    for name in ("capture_id", "split", "src_addr", "ip_proto", "protocol", "dst_port"):
        frame[name] = category_strings(packets, name) if name in packets else UNSPLIT
    for name, bit in TCP_FLAG_BITS.items():
        frame[name] = (frame["flags"] & bit) > 0
    frame["piat_ms"] = frame.groupby("flow")["time_ns"].diff() / 1e6

    first = frame.groupby("flow").first()
    initiator = frame["flow"].map(first["endpoint"])
    frame["forward"] = frame["endpoint"] == initiator
    frame["src2dst_bytes"] = frame["bytes"].where(frame["forward"], 0.0)
    frame["dst2src_bytes"] = frame["bytes"].where(~frame["forward"], 0.0)

    grouped = frame.groupby("flow")
    rows = pd.DataFrame(
        {
            "capture_id": first["capture_id"],
            "split": first["split"],
            "host": first["src_addr"].replace("", None),
            "first_frame": grouped["frame_number"].min(),
            "last_frame": grouped["frame_number"].max(),
            "start_ns": grouped["time_ns"].min(),
            "end_ns": grouped["time_ns"].max(),
            "label": grouped["label"].max().astype("Int8"),
            "anomalous_frames": grouped["label"].sum().fillna(0).astype(np.int32),
            "bidirectional_duration_ms": (grouped["time_ns"].max() - grouped["time_ns"].min()) / 1e6,
            "src2dst_packets": grouped["forward"].sum().astype(np.float64),
            "dst2src_packets": (~frame["forward"]).groupby(frame["flow"]).sum().astype(np.float64),
            "src2dst_bytes": grouped["src2dst_bytes"].sum(),
            "dst2src_bytes": grouped["dst2src_bytes"].sum(),
        }
    )
    for name in TCP_FLAG_BITS:
        rows[f"bidirectional_{name}_packets"] = grouped[name].sum().astype(np.float64)
    piat = grouped["piat_ms"]
    rows["bidirectional_mean_piat_ms"] = piat.mean().fillna(0.0)
    rows["bidirectional_stddev_piat_ms"] = piat.std(ddof=0).fillna(0.0)
    rows["bidirectional_min_piat_ms"] = piat.min().fillna(0.0)
    rows["bidirectional_max_piat_ms"] = piat.max().fillna(0.0)
    rows["bidirectional_mean_ps"] = grouped["bytes"].mean()
    for name in FLOW_CATEGORICAL_FEATURES:
        rows[name] = first[name]
    return rows.sort_values(["start_ns", "first_frame"], kind="stable").reset_index(drop=True)


FLOW = FeatureSet(
    name="flow",
    row_unit="flow",
    numeric_features=FLOW_NUMERIC_FEATURES,
    categorical_features=FLOW_CATEGORICAL_FEATURES,
    derive=derive_flow_rows,
    group_by=("capture_id", "split"),
)
