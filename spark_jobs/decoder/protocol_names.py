"""Wireshark-style protocol names for the Protocol column, chosen with numpy masks.

The name is that of the highest layer the decoder recognises. Above TCP and
UDP the decoder does not dissect. It names an application protocol from the
port, trying the lower port first as Wireshark's TCP and UDP dissectors do.
For HTTP, TLS, SMB, COTP, QUIC and DTLS it also checks the first payload
bytes, and it names only frames that carry payload. What this cannot match
in Wireshark:

* Wireshark reassembles TCP streams and names only the segment that completes
  a PDU. ``tcp_pdus`` follows message boundaries for TLS, NBSS (SMB) and HTTP
  with a Content-Length body to do the same. Other protocols are named in
  every segment that carries payload on their port.
* TLS names come from the record-layer version (SSLv3, TLSv1, TLSv1.1,
  TLSv1.2). A session negotiated as 1.3 is named TLSv1.3 from its server hello
  on (see ``flow_names``).
* IP fragments are all named IPv4 or IPv6, while Wireshark names the last
  fragment after the reassembled datagram.
* Protocols that Wireshark finds by heuristics on unregistered ports, and
  services inside SMB named pipes (DCE/RPC), are not recognised.
"""

from __future__ import annotations

import numpy as np

from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.frame_bytes import MISSING

ETHERTYPE_NAMES = {
    0x0806: "ARP",
    0x8035: "RARP",
    0x88CC: "LLDP",
    0x888E: "EAPOL",
    0x9000: "LOOP",
    0x8863: "PPPoED",
    0x8864: "PPPoES",
    0x8847: "MPLS",
    0x8848: "MPLS",
    0x88F7: "PTPv2",
    0x0842: "WOL",
    0x893A: "IEEE1905.1a",
    0x88E1: "HomePlug AV",
    0x8809: "Slow Protocols",
    0x890D: "TDLS",
    0x0800: "IPv4",
    0x86DD: "IPv6",
}

LINK_TYPE_NAMES = {
    0: "NULL", 1: "Ethernet", 12: "Raw", 101: "Raw", 105: "802.11", 108: "LOOP",
    113: "SLL", 127: "802.11", 228: "Raw", 229: "Raw", 276: "SLL",
}

IP_PROTOCOL_NAMES = {
    1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6",
    89: "OSPF", 103: "PIMv2", 112: "VRRP", 132: "SCTP", 33: "DCCP", 115: "L2TP",
}

TCP_PORT_NAMES = {
    21: "FTP", 22: "SSH", 23: "TELNET", 25: "SMTP", 53: "DNS", 110: "POP", 143: "IMAP",
    179: "BGP", 389: "LDAP", 502: "Modbus/TCP", 1433: "TDS", 3306: "MySQL",
    5432: "PGSQL", 6667: "IRC", 1723: "PPTP", 5222: "XMPP", 587: "SMTP", 88: "KRB5",
    135: "DCERPC", 5900: "VNC", 1883: "MQTT", 20000: "DNP 3.0",
}
HTTP_PORTS = (80, 8080, 8000, 8008, 8888, 3128)
TLS_PORTS = (443, 8443, 993, 995, 465, 636, 853, 990, 992, 5061, 5223, 9001)
SMB_PORTS = (445, 139)
NBSS_CONTROL_TYPES = (0x81, 0x82, 0x83, 0x84, 0x85)

UDP_PORT_NAMES = {
    53: "DNS", 67: "DHCP", 68: "DHCP", 69: "TFTP", 123: "NTP", 137: "NBNS", 138: "BROWSER",
    161: "SNMP", 162: "SNMP", 500: "ISAKMP", 514: "Syslog", 520: "RIPv2", 546: "DHCPv6",
    547: "DHCPv6", 1900: "SSDP", 3478: "STUN", 5353: "MDNS", 5355: "LLMNR", 1812: "RADIUS",
    1813: "RADIUS", 5060: "SIP", 3544: "Teredo", 1194: "OpenVPN", 4789: "VXLAN",
    2152: "GTP", 1701: "L2TP", 11211: "MEMCACHE", 6081: "Geneve",
    4500: "UDPENCAP", 5683: "CoAP", 5246: "CAPWAP-Control",
}
QUIC_PORTS = (443, 80, 8443)

HTTP_PREFIXES = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"CONN", b"PATC", b"TRAC", b"HTTP")
TLS_VERSION_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2"}
# 0x0100 is the pre-standard DTLS 1.0 of OpenSSL before 0.9.8f, still sent by
# Cisco AnyConnect.
DTLS_VERSION_NAMES = {0x0100: "DTLS 1.0 (OpenSSL pre 0.9.8f)", 0xFEFF: "DTLSv1.0", 0xFEFD: "DTLSv1.2"}
PAYLOAD_PROBE_BYTES = 8


def _port_set(ports: tuple[int, ...]) -> np.ndarray:
    """Build a 65536-entry lookup table that is True at the given ports."""
    table = np.zeros(65536, dtype=bool)
    table[list(ports)] = True
    return table


HTTP_PORT_SET = _port_set(HTTP_PORTS)
TLS_PORT_SET = _port_set(TLS_PORTS)
SMB_PORT_SET = _port_set(SMB_PORTS)
COTP_PORT_SET = _port_set((102,))
QUIC_PORT_SET = _port_set(QUIC_PORTS)
HTTP_PREFIX_WORDS = np.array([int.from_bytes(prefix, "big") for prefix in HTTP_PREFIXES], dtype=np.int64)
SMB1_MARKER = int.from_bytes(b"\xffSMB", "big")
SMB2_MARKER = int.from_bytes(b"\xfeSMB", "big")


def _port_names(dissection: Dissection, names: dict[int, str]) -> np.ndarray:
    """Build a 65536-entry lookup table of name codes, MISSING where a port has no name."""
    table = np.full(65536, MISSING, dtype=np.int64)
    for port, name in names.items():
        table[port] = dissection.names.code(name)
    return table


def _named_by_port(table: np.ndarray, src_port: np.ndarray, dst_port: np.ndarray) -> np.ndarray:
    """Name from the lower port where it has one, else from the higher port."""
    low_name = table[np.minimum(src_port, dst_port)]
    high_name = table[np.maximum(src_port, dst_port)]
    return np.where(low_name >= 0, low_name, high_name)


class _Payloads:
    """The first bytes of the transport payload of a subset of frames.

    Attributes:
        src_port, dst_port: Ports of the subset (all present).
        captured: True where at least 4 payload bytes were captured.
        word: The first 4 payload bytes as a big-endian integer, MISSING where
            they were not captured.
        first: The first payload byte, MISSING where not captured.
        version: Payload bytes 1..2 as a big-endian integer (meaningful
            only where ``captured``).
        marker: Payload bytes 4..7 as a big-endian integer, MISSING where
            they were not captured.
    """

    def __init__(self, dissection: Dissection, rows: np.ndarray) -> None:
        frames = dissection.frames.subset(rows)
        pos = dissection.payload_off[rows]
        self.src_port = dissection.src_port[rows]
        self.dst_port = dissection.dst_port[rows]
        self.captured = frames.has(pos, 4)
        self.word = np.where(self.captured, frames.u32(pos, checked=False), MISSING)
        self.marker = frames.u32(pos + 4, checked=True)
        self.first = np.where(self.captured, self.word >> 24, MISSING)
        self.version = (self.word >> 8) & 0xFFFF

    def on_ports(self, port_set: np.ndarray) -> np.ndarray:
        return port_set[self.src_port] | port_set[self.dst_port]


def protocol_codes(dissection: Dissection) -> np.ndarray:
    """Choose a protocol-name code (into ``dissection.names``) for every frame."""
    names = dissection.names
    count = len(dissection)
    codes = np.full(count, names.code("Ethernet"), dtype=np.int64)

    for link_type in np.unique(dissection.link_type):
        name = LINK_TYPE_NAMES.get(int(link_type))
        if name is not None:
            codes[dissection.link_type == link_type] = names.code(name)

    # EtherType layer: named types, else the hex value as Wireshark shows it.
    net_type = dissection.net_type
    typed = net_type >= 0
    for ether_type in np.unique(net_type[typed]):
        name = ETHERTYPE_NAMES.get(int(ether_type), f"0x{int(ether_type):04x}")
        codes[net_type == ether_type] = names.code(name)

    named_link = dissection.link_name >= 0
    codes[named_link] = dissection.link_name[named_link]

    # IP layer and IP protocol.
    ipv4 = dissection.ip_version == 4
    ipv6 = dissection.ip_version == 6
    codes[ipv4] = names.code("IPv4")
    codes[ipv6] = names.code("IPv6")
    proto = dissection.ip_proto
    whole = (ipv4 | ipv6) & ~dissection.is_fragment
    by_protocol = np.full(256, MISSING, dtype=np.int64)
    for number, name in IP_PROTOCOL_NAMES.items():
        by_protocol[number] = names.code(name)
    protocol_code = by_protocol[proto & 0xFF]
    named_protocol = whole & (proto >= 0) & (protocol_code >= 0)
    codes[named_protocol] = protocol_code[named_protocol]
    _name_igmp(dissection, codes, whole & (proto == 2))

    # Application protocols: only frames with transport payload are looked at.
    with_payload = whole & (dissection.payload_len > 0) & (dissection.src_port >= 0) & (dissection.dst_port >= 0)
    tcp_rows = np.nonzero(with_payload & (proto == 6))[0]
    udp_rows = np.nonzero(with_payload & (proto == 17))[0]
    if len(tcp_rows):
        payload = _Payloads(dissection, tcp_rows)
        dissection.payload_word[tcp_rows] = payload.word
        codes[tcp_rows] = _tcp_names(dissection, codes[tcp_rows], payload)
    if len(udp_rows):
        payload = _Payloads(dissection, udp_rows)
        dissection.payload_word[udp_rows] = payload.word
        codes[udp_rows] = _udp_names(dissection, codes[udp_rows], payload)
    return codes


def _name_igmp(dissection: Dissection, codes: np.ndarray, igmp: np.ndarray) -> None:
    names = dissection.names
    codes[igmp] = names.code("IGMP")
    if not igmp.any():
        return
    igmp_type = dissection.frames.u8(dissection.l4_off)
    codes[igmp & (igmp_type == 0x12)] = names.code("IGMPv1")
    codes[igmp & np.isin(igmp_type, (0x16, 0x17))] = names.code("IGMPv2")
    codes[igmp & (igmp_type == 0x22)] = names.code("IGMPv3")
    # A membership query is version 3 when it is at least 12 bytes long.
    query = igmp & (igmp_type == 0x11)
    codes[query & (dissection.l4_len >= 12)] = names.code("IGMPv3")
    codes[query & (dissection.l4_len < 12)] = names.code("IGMPv2")


def _tcp_names(dissection: Dissection, codes: np.ndarray, payload: _Payloads) -> np.ndarray:
    names = dissection.names
    by_port = _named_by_port(_port_names(dissection, TCP_PORT_NAMES), payload.src_port, payload.dst_port)
    codes = np.where(by_port >= 0, by_port, codes)
    captured = payload.captured

    http = np.nonzero(payload.on_ports(HTTP_PORT_SET) & captured)[0]
    codes[http[np.isin(payload.word[http], HTTP_PREFIX_WORDS)]] = names.code("HTTP")

    tls = payload.on_ports(TLS_PORT_SET) & captured & (payload.first >= 20) & (payload.first <= 24)
    for number, name in TLS_VERSION_NAMES.items():
        codes[tls & (payload.version == number)] = names.code(name)

    # ISO transport over TCP (TPKT version 3) on port 102, as S7 PLCs use it.
    cotp = payload.on_ports(COTP_PORT_SET) & captured & (payload.first == 3)
    codes[cotp] = names.code("COTP")

    # NetBIOS session service: session messages (type 0) are named after the
    # SMB header they carry, the other message types are NBSS itself, and a
    # segment that starts with neither continues an earlier message ("TCP").
    smb = np.nonzero(payload.on_ports(SMB_PORT_SET) & captured)[0]
    if len(smb):
        marker = payload.marker[smb]
        smb_codes = np.full(len(smb), names.code("TCP"), dtype=np.int64)
        smb_codes[np.isin(payload.first[smb], NBSS_CONTROL_TYPES)] = names.code("NBSS")
        smb_codes[marker == SMB2_MARKER] = names.code("SMB2")
        smb_codes[marker == SMB1_MARKER] = names.code("SMB")
        codes[smb] = smb_codes
    return codes


def _udp_names(dissection: Dissection, codes: np.ndarray, payload: _Payloads) -> np.ndarray:
    names = dissection.names
    by_port = _named_by_port(_port_names(dissection, UDP_PORT_NAMES), payload.src_port, payload.dst_port)
    codes = np.where(by_port >= 0, by_port, codes)
    captured = payload.captured

    # QUIC long-header packets: the two top bits of the first byte are set.
    quic = payload.on_ports(QUIC_PORT_SET) & captured & ((payload.first & 0xC0) == 0xC0)
    codes[quic] = names.code("QUIC")

    # DTLS records: content type 20-25 and a DTLS version, on any UDP port.
    dtls = captured & (payload.first >= 20) & (payload.first <= 25)
    for number, name in DTLS_VERSION_NAMES.items():
        codes[dtls & (payload.version == number)] = names.code(name)
    return codes
