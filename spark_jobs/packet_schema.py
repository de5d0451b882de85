"""The packet table: one row per captured frame, defined once for every stage.

The decoder produces record batches with ``PACKET_SCHEMA``, the extraction job
writes them as Parquet partitioned by ``capture_id``, the windows job reads them,
and the packet suite in ``expectations/`` enforces them.

Conventions:
    * Frame numbers start at 1 and follow file order, as Wireshark numbers them.
    * ``timestamp_ns`` is the exact capture time in nanoseconds since the Unix epoch,
      UTC. It is an integer so that nanosecond captures keep their precision and no
      session time zone can shift it.
    * ``inter_arrival_ns`` is the gap to the previous frame of the same capture in
      file order. It is never negative: a frame stamped earlier than its predecessor
      gets 0 and ``timestamp_backwards`` set.
    * ``src_addr`` and ``dst_addr`` hold the IP addresses where the frame has an IP
      layer, else the MAC addresses, else null.
    * A field that the frame's protocols do not have (ports on ARP, TTL on a
      non-IP frame, TCP flags on UDP) is null, never 0.
    * ``label`` is null where no labels file was given, else 0 (normal) or 1
      (anomalous).
"""

from __future__ import annotations

import pyarrow as pa

PACKET_FIELDS: list[pa.Field] = [
    pa.field("capture_id", pa.string(), nullable=False),
    pa.field("frame_number", pa.int64(), nullable=False),
    pa.field("timestamp_ns", pa.int64(), nullable=False),
    pa.field("inter_arrival_ns", pa.int64(), nullable=False),
    pa.field("timestamp_backwards", pa.bool_(), nullable=False),
    pa.field("interface_id", pa.int32(), nullable=False),
    pa.field("link_type", pa.int32(), nullable=False),
    pa.field("frame_len", pa.int32(), nullable=False),
    pa.field("cap_len", pa.int32(), nullable=False),
    pa.field("snaplen_cut", pa.bool_(), nullable=False),
    pa.field("malformed", pa.bool_(), nullable=False),
    pa.field("src_mac", pa.string()),
    pa.field("dst_mac", pa.string()),
    pa.field("vlan_id", pa.int32()),
    pa.field("inner_vlan_id", pa.int32()),
    pa.field("eth_type", pa.int32()),
    pa.field("src_addr", pa.string()),
    pa.field("dst_addr", pa.string()),
    pa.field("ip_version", pa.int8()),
    pa.field("ip_proto", pa.int16()),
    pa.field("ttl", pa.int16()),
    pa.field("ip_id", pa.int32()),
    pa.field("is_fragment", pa.bool_()),
    pa.field("src_port", pa.int32()),
    pa.field("dst_port", pa.int32()),
    pa.field("tcp_flags", pa.int16()),
    pa.field("tcp_window", pa.int32()),
    pa.field("icmp_type", pa.int16()),
    pa.field("icmp_code", pa.int16()),
    pa.field("payload_len", pa.int32()),
    pa.field("protocol", pa.string(), nullable=False),
    pa.field("label", pa.int8()),
]

PACKET_SCHEMA = pa.schema(PACKET_FIELDS)

PACKET_COLUMNS: list[str] = [field.name for field in PACKET_FIELDS]

COLUMN_DESCRIPTIONS: dict[str, str] = {
    "capture_id": "Identifier of the capture the frame came from; the partition key.",
    "frame_number": "1-based frame number in file order, as Wireshark shows it.",
    "timestamp_ns": "Capture time, nanoseconds since 1970-01-01T00:00:00Z.",
    "inter_arrival_ns": "Nanoseconds since the previous frame of the capture; 0 for the first.",
    "timestamp_backwards": "True where the frame is stamped earlier than its predecessor.",
    "interface_id": "pcapng interface the frame was captured on; 0 for classic pcap.",
    "link_type": "Link-layer header type (LINKTYPE_* number) of the frame's interface.",
    "frame_len": "Original length of the frame on the wire, bytes.",
    "cap_len": "Bytes of the frame present in the file; at most frame_len.",
    "snaplen_cut": "True where cap_len < frame_len because of the snapshot length.",
    "malformed": "True where the frame is too short for its link-layer header.",
    "src_mac": "Source MAC address, where the link layer has one.",
    "dst_mac": "Destination MAC address, where the link layer has one.",
    "vlan_id": "Outermost 802.1Q/802.1ad VLAN id.",
    "inner_vlan_id": "Second VLAN id of a stacked (QinQ) frame.",
    "eth_type": "EtherType of the layer above the link layer (after VLAN tags).",
    "src_addr": "Source IP address, else source MAC address.",
    "dst_addr": "Destination IP address, else destination MAC address.",
    "ip_version": "4 or 6; null for non-IP frames.",
    "ip_proto": "Transport protocol number (IPv4 protocol, IPv6 last next-header).",
    "ttl": "IPv4 TTL or IPv6 hop limit.",
    "ip_id": "IPv4 identification (or IPv6 fragment id); ties fragments to a datagram.",
    "is_fragment": "True for any fragment of a fragmented IP datagram.",
    "src_port": "TCP/UDP source port; null for non-first fragments and other protocols.",
    "dst_port": "TCP/UDP destination port; null for non-first fragments and other protocols.",
    "tcp_flags": "TCP flag bits (FIN=0x01 ... CWR=0x80, NS=0x100).",
    "tcp_window": "TCP window field, unscaled.",
    "icmp_type": "ICMP or ICMPv6 type.",
    "icmp_code": "ICMP or ICMPv6 code.",
    "payload_len": "Transport payload length, bytes, from the IP lengths (not cap_len).",
    "protocol": "Wireshark-style protocol name of the highest recognised layer.",
    "label": "0 normal, 1 anomalous, null where the capture has no labels.",
}
