"""Hand-built frames and capture files for byte-level decoder tests.

Every builder writes its header fields one by one with ``struct`` so that a
reader can check each byte against the format specification.
"""

from __future__ import annotations

import struct

T0 = 1_733_300_000  # 2024-12-04T08:13:20Z, seconds since the epoch


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def ipv4_address(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def ethernet(dst: str, src: str, ether_type: int, payload: bytes) -> bytes:
    return (
        mac(dst)                               # destination MAC, 6 bytes
        + mac(src)                             # source MAC, 6 bytes
        + struct.pack("!H", ether_type)        # EtherType
        + payload
    )


def ipv4(src: str, dst: str, protocol: int, payload: bytes, *, ident: int = 1, ttl: int = 64,
         flags_offset: int = 0, total_len: int | None = None) -> bytes:
    header = (
        bytes([0x45, 0])                                  # version 4, IHL 5 words; DSCP/ECN
        + struct.pack("!H", total_len if total_len is not None else 20 + len(payload))
        + struct.pack("!H", ident)                        # identification
        + struct.pack("!H", flags_offset)                 # flags (MF = 0x2000) and fragment offset
        + bytes([ttl, protocol])                          # TTL, protocol
        + b"\x00\x00"                                     # header checksum (not checked)
        + ipv4_address(src)
        + ipv4_address(dst)
    )
    return header + payload


def ipv6(src: bytes, dst: bytes, next_header: int, payload: bytes, *, hop_limit: int = 64) -> bytes:
    return (
        struct.pack("!I", 6 << 28)                        # version 6, traffic class, flow label
        + struct.pack("!H", len(payload))                 # payload length
        + bytes([next_header, hop_limit])
        + src                                             # 16 bytes
        + dst                                             # 16 bytes
        + payload
    )


def udp(src_port: int, dst_port: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload


def tcp(src_port: int, dst_port: int, flags: int, payload: bytes = b"", *, window: int = 64240) -> bytes:
    return (
        struct.pack("!HH", src_port, dst_port)
        + struct.pack("!II", 1000, 0)                     # sequence, acknowledgement numbers
        + bytes([5 << 4, flags])                          # data offset 5 words; flags
        + struct.pack("!HHH", window, 0, 0)               # window, checksum, urgent pointer
        + payload
    )


def icmp(icmp_type: int, code: int, body: bytes) -> bytes:
    return bytes([icmp_type, code]) + b"\x00\x00" + b"\x00\x00\x00\x00" + body


def udp_frame(src_port: int = 1111, dst_port: int = 53, payload: bytes = b"abcd") -> bytes:
    """Ethernet / IPv4 192.0.2.1 -> 192.0.2.2 / UDP."""
    return ethernet(
        "02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800,
        ipv4("192.0.2.1", "192.0.2.2", 17, udp(src_port, dst_port, payload)),
    )


def pcap_file(frames: list[tuple[int, int, bytes]], *, byte_order: str = "<", nanosecond: bool = False,
              link_type: int = 1, snaplen: int = 65535, orig_lens: list[int] | None = None) -> bytes:
    """Build a classic pcap file from (seconds, fraction, data) per record."""
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    header = struct.pack(
        byte_order + "IHHiIII",
        magic,            # magic number, written in the file's byte order
        2, 4,             # version 2.4
        0,                # this zone (always 0)
        0,                # sigfigs (always 0)
        snaplen,
        link_type,
    )
    records = []
    for index, (seconds, fraction, data) in enumerate(frames):
        orig_len = orig_lens[index] if orig_lens else len(data)
        records.append(
            struct.pack(byte_order + "IIII", seconds, fraction, len(data), orig_len)  # ts, caplen, origlen
            + data
        )
    return header + b"".join(records)


def pcapng_block(block_type: int, body: bytes, byte_order: str) -> bytes:
    """A pcapng block: type, total length, body padded to 4 bytes, total length again."""
    padded = body + b"\x00" * (-len(body) % 4)
    total = 12 + len(padded)
    return struct.pack(byte_order + "II", block_type, total) + padded + struct.pack(byte_order + "I", total)


def section_header(byte_order: str) -> bytes:
    body = (
        struct.pack(byte_order + "I", 0x1A2B3C4D)   # byte-order magic
        + struct.pack(byte_order + "HH", 1, 0)      # version 1.0
        + struct.pack(byte_order + "q", -1)         # section length unknown
    )
    return pcapng_block(0x0A0D0D0A, body, byte_order)


def interface_description(byte_order: str, link_type: int, *, tsresol: int | None = None,
                          tsoffset_s: int | None = None) -> bytes:
    options = b""
    if tsresol is not None:
        options += struct.pack(byte_order + "HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3  # if_tsresol
    if tsoffset_s is not None:
        options += struct.pack(byte_order + "HHq", 14, 8, tsoffset_s)                    # if_tsoffset
    if options:
        options += struct.pack(byte_order + "HH", 0, 0)                                  # opt_endofopt
    body = struct.pack(byte_order + "HHI", link_type, 0, 262144) + options  # link type, reserved, snaplen
    return pcapng_block(1, body, byte_order)


def enhanced_packet(byte_order: str, interface_id: int, ticks: int, data: bytes,
                    orig_len: int | None = None) -> bytes:
    body = (
        struct.pack(byte_order + "I", interface_id)
        + struct.pack(byte_order + "II", ticks >> 32, ticks & 0xFFFFFFFF)   # timestamp high, low
        + struct.pack(byte_order + "II", len(data), orig_len or len(data))  # captured, original length
        + data
    )
    return pcapng_block(6, body, byte_order)


def simple_packet(byte_order: str, data: bytes) -> bytes:
    return pcapng_block(3, struct.pack(byte_order + "I", len(data)) + data, byte_order)


def obsolete_packet(byte_order: str, interface_id: int, ticks: int, data: bytes) -> bytes:
    body = (
        struct.pack(byte_order + "HH", interface_id, 0)                     # interface, drops count
        + struct.pack(byte_order + "II", ticks >> 32, ticks & 0xFFFFFFFF)
        + struct.pack(byte_order + "II", len(data), len(data))
        + data
    )
    return pcapng_block(2, body, byte_order)
