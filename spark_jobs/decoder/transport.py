"""TCP, UDP, ICMP and ICMPv6 headers, and the tunnels whose inner IP packet is decoded again."""

from __future__ import annotations

import numpy as np

from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.frame_bytes import MISSING
from spark_jobs.decoder.link import ETHERTYPE_IPV4, ETHERTYPE_IPV6

IP_PROTO_ICMP = 1
IP_PROTO_IPIP = 4
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
IP_PROTO_IPV6 = 41
IP_PROTO_GRE = 47
IP_PROTO_ICMPV6 = 58

TCP_MIN_HEADER_BYTES = 20
UDP_HEADER_BYTES = 8
ICMP_HEADER_BYTES = 8
TEREDO_PORT = 3544
ETHERTYPE_TRANSPARENT_ETHERNET = 0x6558
# Cisco MetaData inside GRE: the next EtherType, then 6 bytes of version,
# length, option and security group tag, then the packet.
ETHERTYPE_CISCO_METADATA = 0x8909
CISCO_METADATA_BYTES = 8


def dissect_transport(dissection: Dissection, rows: np.ndarray) -> None:
    """Decode TCP, UDP and ICMP headers at ``l4_off`` for the frames at ``rows``.

    Only first fragments (and unfragmented packets) are read: later fragments
    start with payload bytes, so ports read there would be garbage. ICMP rows
    keep null ports even where an ICMP error quotes a TCP or UDP header,
    because the quoted packet is not live traffic.

    ``payload_len`` is the IP payload length minus the transport header: the
    TCP data offset, 8 bytes for UDP and 8 for ICMP (type, code, checksum and
    the 4-byte rest of header). Other IP protocols and later fragments get the
    whole IP payload length.
    """
    l4_off = dissection.l4_off[rows]
    l4_len = dissection.l4_len[rows]
    has_l4 = l4_off >= 0
    proto = dissection.ip_proto[rows]
    first = dissection.first_fragment[rows]
    dissection.payload_len[rows] = np.where(has_l4, l4_len, MISSING)

    frames = dissection.frames.subset(rows)
    tcp = has_l4 & first & (proto == IP_PROTO_TCP)
    udp = has_l4 & first & (proto == IP_PROTO_UDP)
    icmp = has_l4 & first & ((proto == IP_PROTO_ICMP) | (proto == IP_PROTO_ICMPV6))

    # Ports need the first 4 bytes of the header captured, the TCP data
    # offset, flags and window the first 16.
    ports = (tcp | udp) & frames.has(l4_off, 4)
    if ports.any():
        src_port = frames.u16(l4_off, checked=False)
        dst_port = frames.u16(l4_off + 2, checked=False)
        dissection.src_port[rows[ports]] = src_port[ports]
        dissection.dst_port[rows[ports]] = dst_port[ports]

    if tcp.any():
        tcp_header = frames.has(l4_off, 16)
        offset_byte = frames.u8(l4_off + 12, checked=False)
        header_len = np.where(tcp_header, (offset_byte >> 4) * 4, TCP_MIN_HEADER_BYTES)
        header_len = np.maximum(header_len, TCP_MIN_HEADER_BYTES)
        flag_byte = frames.u8(l4_off + 13, checked=False)
        flags = np.where(tcp_header, flag_byte | ((offset_byte & 0x1) << 8), MISSING)
        window = np.where(tcp_header, frames.u16(l4_off + 14, checked=False), MISSING)
        payload = np.maximum(l4_len - header_len, 0)
        selected = rows[tcp]
        dissection.tcp_flags[selected] = flags[tcp]
        dissection.tcp_window[selected] = window[tcp]
        dissection.payload_len[selected] = payload[tcp]
        dissection.payload_off[selected] = (l4_off + header_len)[tcp]

    if udp.any():
        selected = rows[udp]
        dissection.payload_len[selected] = np.maximum(l4_len - UDP_HEADER_BYTES, 0)[udp]
        dissection.payload_off[selected] = (l4_off + UDP_HEADER_BYTES)[udp]

    if icmp.any():
        selected = rows[icmp]
        dissection.icmp_type[selected] = frames.u8(l4_off)[icmp]
        dissection.icmp_code[selected] = frames.u8(l4_off + 1)[icmp]
        dissection.payload_len[selected] = np.maximum(l4_len - ICMP_HEADER_BYTES, 0)[icmp]
        dissection.payload_off[selected] = (l4_off + ICMP_HEADER_BYTES)[icmp]


def find_tunnels(dissection: Dissection, rows: np.ndarray) -> np.ndarray:
    """Point ``net_off``/``net_type`` of tunnelled frames at the inner IP packet.

    Recognised: IPv4/IPv6 in IP (protocols 4 and 41), GRE version 0 carrying
    IPv4, IPv6, Cisco MetaData or transparent Ethernet, and Teredo (IPv6 in UDP port 3544).
    Wireshark's Source and Destination columns show the innermost addresses,
    and so does the decoder after the caller decodes these frames again.

    Returns:
        The rows whose inner packet should be decoded next.
    """
    frames = dissection.frames.subset(rows)
    proto = dissection.ip_proto[rows]
    l4_off = dissection.l4_off[rows]
    usable = (l4_off >= 0) & dissection.first_fragment[rows] & ~dissection.is_fragment[rows]

    inner_off = np.full(len(rows), MISSING, dtype=np.int64)
    inner_type = inner_off.copy()

    ip_in_ip = usable & ((proto == IP_PROTO_IPIP) | (proto == IP_PROTO_IPV6))
    inner_off[ip_in_ip] = l4_off[ip_in_ip]
    inner_type[ip_in_ip] = np.where(proto == IP_PROTO_IPIP, ETHERTYPE_IPV4, ETHERTYPE_IPV6)[ip_in_ip]

    gre = usable & (proto == IP_PROTO_GRE)
    if gre.any():
        gre_flags = frames.u16(l4_off)
        gre_type = frames.u16(l4_off + 2)
        version_0 = (gre_flags & 0x7) == 0
        header = 4 + 4 * (((gre_flags >> 15) & 1) + ((gre_flags >> 13) & 1) + ((gre_flags >> 12) & 1))
        metadata = gre & version_0 & (gre_type == ETHERTYPE_CISCO_METADATA)
        header = np.where(metadata, header + CISCO_METADATA_BYTES, header)
        gre_type = np.where(metadata, frames.u16(l4_off + header - CISCO_METADATA_BYTES), gre_type)
        gre_ip = gre & version_0 & np.isin(gre_type, (ETHERTYPE_IPV4, ETHERTYPE_IPV6))
        inner_off[gre_ip] = (l4_off + header)[gre_ip]
        inner_type[gre_ip] = gre_type[gre_ip]
        gre_ethernet = gre & version_0 & (gre_type == ETHERTYPE_TRANSPARENT_ETHERNET)
        ethernet_type = frames.u16(l4_off + header + 12)
        gre_ethernet &= np.isin(ethernet_type, (ETHERTYPE_IPV4, ETHERTYPE_IPV6))
        inner_off[gre_ethernet] = (l4_off + header + 14)[gre_ethernet]
        inner_type[gre_ethernet] = ethernet_type[gre_ethernet]

    teredo = usable & (proto == IP_PROTO_UDP) & (
        (dissection.src_port[rows] == TEREDO_PORT) | (dissection.dst_port[rows] == TEREDO_PORT)
    )
    if teredo.any():
        start = l4_off + UDP_HEADER_BYTES
        # Teredo may prefix the IPv6 packet with an authentication header
        # (0x0001, variable) and an origin indication (0x0000, 8 bytes).
        auth = frames.u16(start) == 0x0001
        auth_len = 13 + frames.u8(start + 2) + frames.u8(start + 3)
        start = np.where(auth, start + auth_len, start)
        origin = frames.u16(start) == 0x0000
        start = np.where(origin, start + 8, start)
        teredo &= (frames.u8(start) >> 4) == 6
        inner_off[teredo] = start[teredo]
        inner_type[teredo] = ETHERTYPE_IPV6

    tunnelled = inner_off >= 0
    selected = rows[tunnelled]
    dissection.net_off[selected] = inner_off[tunnelled]
    dissection.net_type[selected] = inner_type[tunnelled]
    return selected


def clear_ip_fields(dissection: Dissection, rows: np.ndarray) -> None:
    """Reset the IP and transport fields before an inner packet is decoded."""
    for name in (
        "ip_version", "src_ip_pos", "dst_ip_pos", "ip_proto", "ttl", "ip_id", "l4_off", "l4_len",
        "src_port", "dst_port", "tcp_flags", "tcp_window", "icmp_type", "icmp_code",
        "payload_off", "payload_len",
    ):
        getattr(dissection, name)[rows] = MISSING
    dissection.is_fragment[rows] = False
    dissection.first_fragment[rows] = True
