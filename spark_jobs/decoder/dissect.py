"""Turn one ``RecordChunk`` into an Arrow record batch with the packet schema."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from spark_jobs.decoder.addresses import address_arrays, ip_keys, mac_keys
from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.flow_names import FlowNames
from spark_jobs.decoder.frame_bytes import MISSING, FrameBytes
from spark_jobs.decoder.link import ETHERTYPE_IPV4, ETHERTYPE_IPV6, dissect_link_layer
from spark_jobs.decoder.network import dissect_ip
from spark_jobs.decoder.protocol_names import protocol_codes
from spark_jobs.decoder.records import RecordChunk
from spark_jobs.decoder.transport import clear_ip_fields, dissect_transport, find_tunnels
from spark_jobs.packet_schema import PACKET_SCHEMA

# IP in GRE in IP in Teredo and similar: deeper nesting is left at this depth.
MAX_TUNNEL_DEPTH = 3


def dissect(chunk: RecordChunk) -> tuple[Dissection, dict[int, int]]:
    """Decode every layer of every frame in ``chunk``.

    Returns:
        The filled ``Dissection`` and the unsupported link types with frame counts.
    """
    frames = FrameBytes(chunk.buf, chunk.data_offset, chunk.cap_len)
    dissection = Dissection(frames, chunk.link_type, chunk.frame_len)
    unsupported = dissect_link_layer(dissection)

    net_type = dissection.net_type
    rows = np.nonzero((net_type == ETHERTYPE_IPV4) | (net_type == ETHERTYPE_IPV6))[0]
    for depth in range(MAX_TUNNEL_DEPTH + 1):
        if not len(rows):
            break
        dissect_ip(dissection, rows)
        dissect_transport(dissection, rows)
        if depth == MAX_TUNNEL_DEPTH:
            break
        rows = find_tunnels(dissection, rows)
        clear_ip_fields(dissection, rows)
    return dissection, unsupported


def _int_array(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """Convert int64 values with MISSING for null into an Arrow integer array.

    The validity bitmap and data buffer are handed to Arrow directly, which
    costs a third of ``pa.array(..., mask=...)``.
    """
    data = values.astype(arrow_type.to_pandas_dtype())
    valid = values != MISSING
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(data)])


def to_record_batch(
    chunk: RecordChunk,
    dissection: Dissection,
    *,
    capture_id: str,
    first_frame_number: int,
    previous_timestamp_ns: int | None,
    flow_names: FlowNames,
) -> pa.RecordBatch:
    """Assemble the packet-schema batch from a chunk and its dissection.

    ``flow_names`` carries per-flow protocol-name state from earlier batches
    of the same capture and is updated.
    """
    count = len(chunk)
    timestamp_ns = chunk.timestamp_ns
    previous = np.empty(count, dtype=np.int64)
    if count:
        previous[0] = timestamp_ns[0] if previous_timestamp_ns is None else previous_timestamp_ns
        previous[1:] = timestamp_ns[:-1]
    gap_ns = timestamp_ns - previous
    backwards = gap_ns < 0

    frames = dissection.frames
    ipv6_table: list[np.ndarray] = []
    src_mac = mac_keys(frames, dissection.src_mac_pos)
    dst_mac = mac_keys(frames, dissection.dst_mac_pos)
    src_ip = ip_keys(frames, dissection.src_ip_pos, dissection.ip_version, ipv6_table)
    dst_ip = ip_keys(frames, dissection.dst_ip_pos, dissection.ip_version, ipv6_table)
    src_addr = np.where(src_ip != MISSING, src_ip, src_mac)
    dst_addr = np.where(dst_ip != MISSING, dst_ip, dst_mac)
    src_mac_array, dst_mac_array, src_addr_array, dst_addr_array = address_arrays(
        [src_mac, dst_mac, src_addr, dst_addr], ipv6_table
    )

    codes = protocol_codes(dissection)
    flow_names.apply(dissection, codes)
    protocol = pa.array(dissection.names.names, type=pa.string()).take(pa.array(codes.astype(np.int32)))

    has_ip = dissection.ip_version != MISSING
    # IPv6 fragment ids are 32-bit unsigned. They are stored with the same bits
    # in the signed int32 column, so ids above 2**31 - 1 read as negative.
    ip_id = np.where(dissection.ip_id >= 0, dissection.ip_id.astype(np.uint32).view(np.int32), 0)

    columns = {
        "capture_id": pa.repeat(pa.scalar(capture_id, pa.string()), count),
        "frame_number": pa.array(np.arange(first_frame_number, first_frame_number + count, dtype=np.int64)),
        "timestamp_ns": pa.array(timestamp_ns, type=pa.int64()),
        "inter_arrival_ns": pa.array(np.maximum(gap_ns, 0), type=pa.int64()),
        "timestamp_backwards": pa.array(backwards, type=pa.bool_()),
        "interface_id": pa.array(chunk.interface_id.astype(np.int32)),
        "link_type": pa.array(chunk.link_type.astype(np.int32)),
        "frame_len": pa.array(chunk.frame_len.astype(np.int32)),
        "cap_len": pa.array(chunk.cap_len.astype(np.int32)),
        "snaplen_cut": pa.array(chunk.cap_len < chunk.frame_len, type=pa.bool_()),
        "malformed": pa.array(dissection.malformed, type=pa.bool_()),
        "src_mac": src_mac_array,
        "dst_mac": dst_mac_array,
        "vlan_id": _int_array(dissection.vlan_id, pa.int32()),
        "inner_vlan_id": _int_array(dissection.inner_vlan_id, pa.int32()),
        "eth_type": _int_array(dissection.eth_type, pa.int32()),
        "src_addr": src_addr_array,
        "dst_addr": dst_addr_array,
        "ip_version": _int_array(dissection.ip_version, pa.int8()),
        "ip_proto": _int_array(dissection.ip_proto, pa.int16()),
        "ttl": _int_array(dissection.ttl, pa.int16()),
        "ip_id": pa.array(ip_id, mask=dissection.ip_id == MISSING, type=pa.int32()),
        "is_fragment": pa.array(dissection.is_fragment, mask=~has_ip, type=pa.bool_()),
        "src_port": _int_array(dissection.src_port, pa.int32()),
        "dst_port": _int_array(dissection.dst_port, pa.int32()),
        "tcp_flags": _int_array(dissection.tcp_flags, pa.int16()),
        "tcp_window": _int_array(dissection.tcp_window, pa.int32()),
        "icmp_type": _int_array(dissection.icmp_type, pa.int16()),
        "icmp_code": _int_array(dissection.icmp_code, pa.int16()),
        "payload_len": _int_array(dissection.payload_len, pa.int32()),
        "protocol": protocol,
        "label": pa.nulls(count, type=pa.int8()),
    }
    return pa.RecordBatch.from_arrays(list(columns.values()), schema=PACKET_SCHEMA)
