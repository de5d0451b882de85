"""Link, network and transport layers from hand-built frames."""

from __future__ import annotations

import io
import struct

import pytest

from spark_jobs.decoder import decode_to_table
from tests.decoder.frame_builders import (
    T0,
    ethernet,
    icmp,
    ipv4,
    ipv6,
    mac,
    pcap_file,
    tcp,
    udp,
    udp_frame,
)

IPV6_A = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1
IPV6_B = bytes.fromhex("20010db8000000000000000000000002")  # 2001:db8::2


def decode_frames(frames: list[bytes], link_type: int = 1, **kwargs) -> tuple[list[dict], object]:
    data = pcap_file([(T0 + index, 0, frame) for index, frame in enumerate(frames)], link_type=link_type, **kwargs)
    table, summary = decode_to_table(io.BytesIO(data), capture_id="layers")
    return table.to_pylist(), summary


def udp_packet() -> bytes:
    return ipv4("192.0.2.1", "192.0.2.2", 17, udp(1111, 53, b"abcd"))


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_bsd_null_family_in_either_byte_order(byte_order):
    ipv4_frame = struct.pack(byte_order + "I", 2) + udp_packet()                  # AF_INET
    ipv6_frame = struct.pack(byte_order + "I", 30) + ipv6(IPV6_A, IPV6_B, 17, udp(5, 6))  # macOS AF_INET6
    rows, _ = decode_frames([ipv4_frame, ipv6_frame], link_type=0)
    assert [row["ip_version"] for row in rows] == [4, 6]
    assert rows[0]["src_addr"] == "192.0.2.1"
    assert rows[1]["dst_addr"] == "2001:db8::2"


def test_openbsd_loop_uses_network_byte_order():
    rows, _ = decode_frames([struct.pack(">I", 2) + udp_packet()], link_type=108)
    assert rows[0]["protocol"] == "DNS"


def test_linux_cooked_v1_source_mac():
    header = (
        struct.pack("!HHH", 0, 1, 6)          # packet type (to us), ARPHRD_ETHER, address length 6
        + mac("02:00:00:00:00:09") + b"\x00\x00"  # address, padded to 8 bytes
        + struct.pack("!H", 0x0800)           # protocol: IPv4
    )
    rows, _ = decode_frames([header + udp_packet()], link_type=113)
    assert rows[0]["src_mac"] == "02:00:00:00:00:09"
    assert rows[0]["dst_mac"] is None
    assert rows[0]["src_port"] == 1111


@pytest.mark.parametrize("link_type", [12, 101, 228])
def test_raw_ip_link_types(link_type):
    rows, _ = decode_frames([udp_packet()], link_type=link_type)
    assert (rows[0]["ip_version"], rows[0]["dst_port"]) == (4, 53)


def ieee802_11_data(payload_ether_type: int, payload: bytes, *, flags: int = 0x01) -> bytes:
    return (
        bytes([0x08, flags])                  # frame control: data; flags (0x01 = to DS)
        + b"\x00\x00"                         # duration
        + mac("02:00:00:00:00:aa")            # address 1: BSSID (receiver)
        + mac("02:00:00:00:00:01")            # address 2: source
        + mac("02:00:00:00:00:02")            # address 3: destination
        + b"\x00\x00"                         # sequence control
        + b"\xaa\xaa\x03\x00\x00\x00"         # LLC/SNAP header
        + struct.pack("!H", payload_ether_type)
        + payload
    )


def test_ieee802_11_data_frame_through_llc_snap():
    rows, _ = decode_frames([ieee802_11_data(0x0800, udp_packet())], link_type=105)
    row = rows[0]
    assert (row["src_mac"], row["dst_mac"]) == ("02:00:00:00:00:01", "02:00:00:00:00:02")
    assert (row["src_addr"], row["dst_port"], row["protocol"]) == ("192.0.2.1", 53, "DNS")


def test_radiotap_management_and_ack_frames():
    radiotap = b"\x00\x00" + struct.pack("<H", 8) + b"\x00\x00\x00\x00"  # version, pad, length 8, no fields
    beacon = (
        bytes([0x80, 0x00]) + b"\x00\x00"     # frame control: management, beacon
        + mac("ff:ff:ff:ff:ff:ff")            # address 1: destination
        + mac("02:00:00:00:00:aa")            # address 2: source
        + mac("02:00:00:00:00:aa")            # address 3: BSSID
        + b"\x00\x00" + b"\x00" * 12          # sequence control, start of the body
    )
    ack = bytes([0xD4, 0x00]) + b"\x00\x00" + mac("02:00:00:00:00:01")  # control: ACK, receiver only
    rows, summary = decode_frames([radiotap + beacon, radiotap + ack], link_type=127)
    assert [row["protocol"] for row in rows] == ["802.11", "802.11"]
    assert (rows[0]["src_addr"], rows[0]["dst_addr"]) == ("02:00:00:00:00:aa", "ff:ff:ff:ff:ff:ff")
    assert (rows[1]["src_addr"], rows[1]["dst_addr"]) == (None, "02:00:00:00:00:01")
    assert rows[0]["ip_version"] is None
    assert summary.malformed_frames == 0


def test_unsupported_link_type_kept_and_counted(caplog):
    rows, summary = decode_frames([b"\x01\x02\x03", b"\x04\x05"], link_type=147)
    assert [row["protocol"] for row in rows] == ["DLT 147", "DLT 147"]
    assert all(row["src_addr"] is None and row["ip_version"] is None for row in rows)
    assert summary.unsupported_link_types == {147: 2}
    assert sum("link type 147 is not supported" in message for message in caplog.messages) == 1


def test_ipv6_extension_headers_walked_to_transport():
    hop_by_hop = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"   # next: destination options, 8 bytes
    destination = bytes([44, 1]) + b"\x01\x0c" + b"\x00" * 12     # next: fragment, 16 bytes
    fragment = bytes([17, 0]) + struct.pack("!HI", 0x0001, 77)    # next: UDP, offset 0, M set, id 77
    packet = ipv6(IPV6_A, IPV6_B, 0, hop_by_hop + destination + fragment + udp(1000, 53, b"q"))
    rows, _ = decode_frames([ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x86DD, packet)])
    row = rows[0]
    assert (row["ip_proto"], row["src_port"], row["dst_port"]) == (17, 1000, 53)
    assert (row["is_fragment"], row["ip_id"]) == (True, 77)
    assert row["payload_len"] == 1


def test_ipv6_unknown_next_header_stops_walk():
    packet = ipv6(IPV6_A, IPV6_B, 253, b"\x11\x00" + b"\x00" * 14)  # 253: experimental, not an extension
    rows, _ = decode_frames([ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x86DD, packet)])
    assert rows[0]["ip_proto"] == 253
    assert rows[0]["src_port"] is None


def test_icmp_error_quoting_tcp_keeps_ports_null():
    quoted = ipv4("198.51.100.7", "192.0.2.1", 6, tcp(443, 40000, 0x12))[:28]  # IP header + 8 bytes of TCP
    packet = ipv4("192.0.2.254", "198.51.100.7", 1, icmp(3, 3, quoted))          # destination unreachable
    rows, _ = decode_frames([ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800, packet)])
    row = rows[0]
    assert (row["protocol"], row["icmp_type"], row["icmp_code"]) == ("ICMP", 3, 3)
    assert (row["src_port"], row["dst_port"], row["tcp_flags"]) == (None, None, None)


def test_gre_tunnel_reports_inner_packet():
    inner = ipv4("10.0.0.1", "10.0.0.2", 17, udp(4000, 123, b"x" * 48))
    gre = struct.pack("!HH", 0x0000, 0x0800) + inner                              # no options, IPv4
    outer = ipv4("192.0.2.1", "192.0.2.2", 47, gre)
    rows, _ = decode_frames([ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800, outer)])
    assert (rows[0]["src_addr"], rows[0]["dst_addr"]) == ("10.0.0.1", "10.0.0.2")
    assert (rows[0]["dst_port"], rows[0]["protocol"]) == (123, "NTP")


def test_teredo_reports_inner_ipv6():
    inner = ipv6(IPV6_A, IPV6_B, 6, tcp(40000, 80, 0x02))
    outer = ipv4("192.0.2.1", "192.0.2.2", 17, udp(3544, 50000, inner))
    rows, _ = decode_frames([ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800, outer)])
    assert (rows[0]["ip_version"], rows[0]["src_addr"]) == (6, "2001:db8::1")
    assert (rows[0]["src_port"], rows[0]["dst_port"], rows[0]["protocol"]) == (40000, 80, "TCP")


def test_vlan_tagged_arp_uses_mac_addresses():
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + b"\x00" * 20
    tagged = struct.pack("!HH", 7, 0x0806) + arp                                  # TCI: VLAN 7; ARP
    rows, _ = decode_frames([ethernet("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", 0x8100, tagged)])
    row = rows[0]
    assert (row["protocol"], row["vlan_id"], row["inner_vlan_id"], row["eth_type"]) == ("ARP", 7, None, 0x0806)
    assert (row["src_addr"], row["dst_addr"]) == ("02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff")


def test_tcp_fields_and_payload_length():
    segment = tcp(40000, 80, 0x18, b"GET / HTTP/1.1\r\n\r\n", window=1234)
    frame = ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800, ipv4("192.0.2.1", "192.0.2.2", 6, segment, ttl=57))
    rows, _ = decode_frames([frame + b"\x00" * 6])  # Ethernet padding is not payload
    row = rows[0]
    assert (row["tcp_flags"], row["tcp_window"], row["ttl"]) == (0x18, 1234, 57)
    assert row["payload_len"] == 18
    assert row["protocol"] == "HTTP"


def test_tls_record_spanning_segments_named_when_complete():
    record = bytes([23, 3, 3]) + struct.pack("!H", 100) + b"r" * 100              # application data, 105 bytes
    first, second = record[:60], record[60:]

    def segment(sequence: int, payload: bytes) -> bytes:
        header = bytearray(tcp(51000, 443, 0x18, payload))
        header[4:8] = struct.pack("!I", sequence)                                   # sequence number
        return ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800,
                        ipv4("192.0.2.1", "192.0.2.2", 6, bytes(header)))

    rows, _ = decode_frames([segment(1000, first), segment(1060, second), segment(1060, second)])
    # Wireshark: the first part is "TCP", the completing segment is TLS, the
    # retransmission of it is "TCP" again.
    assert [row["protocol"] for row in rows] == ["TCP", "TLSv1.2", "TCP"]


def test_malformed_ethernet_frame_counted():
    rows, summary = decode_frames([b"\x01" * 10, udp_frame()])
    assert rows[0]["malformed"] is True
    assert rows[1]["malformed"] is False
    assert summary.malformed_frames == 1


def test_http_response_named_in_completing_segment():
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\n" + b"b" * 50
    first, second = response[:70], response[70:]

    def segment(sequence: int, payload: bytes, src_port: int, dst_port: int) -> bytes:
        header = bytearray(tcp(src_port, dst_port, 0x18, payload))
        header[4:8] = struct.pack("!I", sequence)                                   # sequence number
        return ethernet("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800,
                        ipv4("192.0.2.1", "192.0.2.2", 6, bytes(header)))

    request = segment(1, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 40000, 80)
    rows, _ = decode_frames([request, segment(500, first, 80, 40000), segment(570, second, 80, 40000)])
    # Wireshark: the request is HTTP, the response headers with part of the
    # body are "TCP", and the segment that completes the body is HTTP.
    assert [row["protocol"] for row in rows] == ["HTTP", "TCP", "HTTP"]
