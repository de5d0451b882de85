"""Inject the frames of an attack capture into a benign background capture.

``mix_captures`` shifts the attack so that its first frame lands ``offset_s``
seconds after the background's first frame, and merges both in time order. It
writes one pcapng file and a labels file (``<stem>.labels.csv``) that marks
exactly the injected frames as anomalous, with the attack's name.

With address remapping (the default), the attack's IP addresses are rewritten
onto the background's most active hosts before the merge, so a detector cannot
score well merely because the addresses are new. Rewriting recomputes the IPv4
header checksum and the TCP, UDP and ICMPv6 checksums, whose pseudo-header
covers the addresses. ARP sender and target protocol addresses are rewritten too.

Inputs are classic pcap (microsecond or nanosecond, either byte order) or
pcapng, either of them gzip-compressed. Frames are held in memory, so this is
meant for captures of up to a few hundred MB.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import logging
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)

IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 6, 17, 58
IPV6_EXTENSION_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options
IPV6_FRAGMENT_HEADER = 44
# Offset of the checksum field inside each transport header.
CHECKSUM_OFFSETS = {IPPROTO_TCP: 16, IPPROTO_UDP: 6, IPPROTO_ICMPV6: 2}

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


class MixError(ValueError):
    """A capture cannot be mixed; the message names the file and what to do."""


@dataclass
class Frame:
    """One captured frame.

    Attributes:
        timestamp_ns: capture time, ns since the Unix epoch (UTC).
        link_type: LINKTYPE_* value of its interface.
        data: the captured bytes.
        wire_len: the frame's original length on the wire, in bytes.
    """

    timestamp_ns: int
    link_type: int
    data: bytes
    wire_len: int


@dataclass
class MixResult:
    """The files and counts that ``mix_captures`` wrote.

    Attributes:
        capture_path: the mixed pcapng file.
        labels_path: its labels file.
        frames: frames in the output.
        injected_frames: frames that came from the attack capture.
        ranges: inclusive 1-based frame ranges of the injected frames.
        address_map: attack address -> background address, as strings.
        checksums_recomputed: injected frames whose checksums were recomputed.
        attack_start_ns: timestamp of the first injected frame in the output.
    """

    capture_path: Path
    labels_path: Path
    frames: int
    injected_frames: int
    ranges: list[tuple[int, int]]
    address_map: dict[str, str] = field(default_factory=dict)
    checksums_recomputed: int = 0
    attack_start_ns: int = 0


# Reading captures -------------------------------------------------------------


def _open_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def _read_pcap(data: bytes, path: Path) -> list[Frame]:
    order, ns_per_tick = PCAP_MAGICS[data[:4]]
    if len(data) < 24:
        raise MixError(f"{path}: the pcap file header is cut short at byte {len(data)}; it needs 24 bytes")
    link_type = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    frames = []
    pos = 24
    while pos + 16 <= len(data):
        seconds, fraction, cap_len, wire_len = struct.unpack_from(order + "IIII", data, pos)
        if pos + 16 + cap_len > len(data):
            logger.warning("%s: frame %d is cut short at byte offset %d; it and anything after it are left out",
                           path, len(frames) + 1, pos)
            break
        frames.append(Frame(seconds * 1_000_000_000 + fraction * ns_per_tick, link_type, data[pos + 16:pos + 16 + cap_len], wire_len))
        pos += 16 + cap_len
    return frames


def _tsresol_ns(value: int) -> tuple[int, int]:
    """Return (numerator, denominator) turning ticks of an if_tsresol into ns."""
    if value & 0x80:
        return 1_000_000_000, 2 ** (value & 0x7F)
    exponent = value & 0x7F
    return (10 ** (9 - exponent), 1) if exponent <= 9 else (1, 10 ** (exponent - 9))


def _read_pcapng(data: bytes, path: Path) -> list[Frame]:
    frames: list[Frame] = []
    interfaces: list[tuple[int, int, int]] = []  # link type, ns numerator, ns denominator
    order = "<"
    pos = 0
    while pos + 12 <= len(data):
        if data[pos:pos + 4] == PCAPNG_MAGIC:
            order = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        block_type, block_len = struct.unpack_from(order + "II", data, pos)
        if block_len < 12 or pos + block_len > len(data):
            logger.warning("%s: block at byte offset %d is damaged or cut short; the rest is left out", path, pos)
            break
        body = data[pos + 8:pos + block_len - 4]
        if block_type == 1:
            link_type = struct.unpack_from(order + "H", body, 0)[0]
            numerator, denominator = 1_000, 1
            option = 8
            while option + 4 <= len(body):
                code, length = struct.unpack_from(order + "HH", body, option)
                if code == 0:
                    break
                if code == 9 and length >= 1:
                    numerator, denominator = _tsresol_ns(body[option + 4])
                option += 4 + (length + 3) // 4 * 4
            interfaces.append((link_type, numerator, denominator))
        elif block_type == 6:
            interface, high, low, cap_len, wire_len = struct.unpack_from(order + "IIIII", body, 0)
            if interface >= len(interfaces):
                raise MixError(f"{path}: packet block at byte offset {pos} names interface {interface}, which is not described")
            link_type, numerator, denominator = interfaces[interface]
            ticks = (high << 32) | low
            frames.append(Frame(ticks * numerator // denominator, link_type, body[20:20 + cap_len], wire_len))
        elif block_type == 3:
            wire_len = struct.unpack_from(order + "I", body, 0)[0]
            link_type = interfaces[0][0] if interfaces else LINKTYPE_ETHERNET
            # A simple packet block has no timestamp; it inherits the previous frame's.
            previous = frames[-1].timestamp_ns if frames else 0
            frames.append(Frame(previous, link_type, body[4:4 + min(wire_len, len(body) - 4)], wire_len))
        pos += block_len
    return frames


def read_capture(path: str | Path) -> list[Frame]:
    """Read every frame of a pcap or pcapng file (optionally gzip-compressed).

    Raises:
        MixError: when the file is neither format.
    """
    path = Path(path)
    data = _open_bytes(path)
    if data[:4] in PCAP_MAGICS:
        return _read_pcap(data, path)
    if data[:4] == PCAPNG_MAGIC:
        return _read_pcapng(data, path)
    raise MixError(f"{path}: not a pcap or pcapng capture (first bytes {data[:8].hex(' ')}); supply a pcap or pcapng file")


# Writing pcapng ---------------------------------------------------------------


def _block(block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def write_pcapng(path: str | Path, frames: list[Frame]) -> None:
    """Write ``frames`` as pcapng: one interface per link type, nanosecond timestamps."""
    link_types = list(dict.fromkeys(frame.link_type for frame in frames)) or [LINKTYPE_ETHERNET]
    interface_of = {link_type: index for index, link_type in enumerate(link_types)}
    chunks = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for link_type in link_types:
        tsresol = struct.pack("<HHB3x", 9, 1, 9)  # if_tsresol = 10^-9 s
        chunks.append(_block(1, struct.pack("<HHI", link_type, 0, 0) + tsresol + struct.pack("<HH", 0, 0)))
    for frame in frames:
        header = struct.pack(
            "<IIIII", interface_of[frame.link_type], frame.timestamp_ns >> 32, frame.timestamp_ns & 0xFFFFFFFF,
            len(frame.data), max(frame.wire_len, len(frame.data)),
        )
        chunks.append(_block(6, header + frame.data))
    Path(path).write_bytes(b"".join(chunks))


# Addresses and checksums ------------------------------------------------------


def _network_offset(frame: Frame) -> tuple[int, int] | None:
    """Return (offset of the network header, ethertype) or None for frames without one."""
    data = frame.data
    if frame.link_type == LINKTYPE_ETHERNET:
        pos, ethertype = 14, int.from_bytes(data[12:14], "big") if len(data) >= 14 else -1
        while ethertype in VLAN_ETHERTYPES and len(data) >= pos + 4:
            ethertype = int.from_bytes(data[pos + 2:pos + 4], "big")
            pos += 4
        return (pos, ethertype) if ethertype >= 0 else None
    if frame.link_type in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) and data:
        ethertypes = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}
        return 0, ethertypes.get(data[0] >> 4, -1)
    if frame.link_type == LINKTYPE_LINUX_SLL and len(data) >= 16:
        return 16, int.from_bytes(data[14:16], "big")
    if frame.link_type == LINKTYPE_LINUX_SLL2 and len(data) >= 20:
        return 20, int.from_bytes(data[0:2], "big")
    return None


def _ip_addresses(frame: Frame) -> list[bytes]:
    """Return the source and destination IP addresses of a frame (empty when it has none)."""
    located = _network_offset(frame)
    if located is None:
        return []
    pos, ethertype = located
    data = frame.data
    if ethertype == ETHERTYPE_IPV4 and len(data) >= pos + 20:
        return [data[pos + 12:pos + 16], data[pos + 16:pos + 20]]
    if ethertype == ETHERTYPE_IPV6 and len(data) >= pos + 40:
        return [data[pos + 8:pos + 24], data[pos + 24:pos + 40]]
    return []


def _is_host_address(raw: bytes) -> bool:
    address = ipaddress.ip_address(raw)
    return not (address.is_multicast or address.is_unspecified or address.is_loopback or raw == b"\xff\xff\xff\xff"
                or (address.version == 4 and raw[3] == 255))


def host_activity(frames: list[Frame]) -> Counter:
    """Count, per unicast IP address, the frames it sends or receives."""
    counts: Counter = Counter()
    for frame in frames:
        for raw in set(_ip_addresses(frame)):
            if _is_host_address(raw):
                counts[raw] += 1
    return counts


def auto_address_map(background: list[Frame], attack: list[Frame]) -> dict[bytes, bytes]:
    """Map the attack's hosts onto the background's, most active onto most active.

    Hosts are ranked by frame count within each IP version. The attack host of
    rank i takes the background host of rank i; when the attack has more hosts
    than the background, the ranks wrap around, so several attack hosts can share
    one background address. An IP version the background lacks is left unmapped
    (a warning says so).
    """
    mapping: dict[bytes, bytes] = {}
    background_counts, attack_counts = host_activity(background), host_activity(attack)
    for width, version in ((4, "IPv4"), (16, "IPv6")):
        targets = [raw for raw, _ in sorted(background_counts.items(), key=lambda item: (-item[1], item[0])) if len(raw) == width]
        sources = [raw for raw, _ in sorted(attack_counts.items(), key=lambda item: (-item[1], item[0])) if len(raw) == width]
        if sources and not targets:
            logger.warning("The background has no %s host; the attack's %d %s address(es) keep their values",
                           version, len(sources), version)
            continue
        for rank, raw in enumerate(sources):
            mapping[raw] = targets[rank % len(targets)]
    return mapping


def read_address_map(path: str | Path) -> dict[bytes, bytes]:
    """Read an address map CSV with the header ``attack_addr,background_addr``.

    Raises:
        MixError: naming the file and line of a missing column or an invalid address.
    """
    path = Path(path)
    mapping: dict[bytes, bytes] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"attack_addr", "background_addr"} <= set(reader.fieldnames or []):
            raise MixError(f"{path}: the header must be attack_addr,background_addr")
        for line, row in enumerate(reader, start=2):
            try:
                source, target = ipaddress.ip_address(row["attack_addr"].strip()), ipaddress.ip_address(row["background_addr"].strip())
            except ValueError as error:
                raise MixError(f"{path}, line {line}: {error}") from None
            if source.version != target.version:
                raise MixError(f"{path}, line {line}: {source} and {target} are of different IP versions")
            mapping[source.packed] = target.packed
    return mapping


def internet_checksum(data: bytes) -> int:
    """Return the 16-bit one's complement of the one's complement sum of ``data`` (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = int(np.frombuffer(data, dtype=">u2").sum(dtype=np.uint64))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _adjust_checksum(checksum: int, old: bytes, new: bytes) -> int:
    """Update a checksum for a change of ``old`` bytes into ``new`` (RFC 1624, eqn. 3)."""
    total = ~checksum & 0xFFFF
    for index in range(0, len(old), 2):
        total += (~int.from_bytes(old[index:index + 2], "big") & 0xFFFF) + int.from_bytes(new[index:index + 2], "big")
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _fix_transport(buf: bytearray, start: int, end: int, protocol: int, pseudo: bytes, old_pair: bytes, whole: bool) -> None:
    """Set the transport checksum of the segment ``buf[start:end]`` after an address change.

    ``whole`` says the segment is complete and unfragmented, so the checksum is
    recomputed from scratch; otherwise it is adjusted for the address change only.
    """
    offset = CHECKSUM_OFFSETS.get(protocol)
    if offset is None or len(buf) < start + offset + 2:
        return
    old = int.from_bytes(buf[start + offset:start + offset + 2], "big")
    if protocol == IPPROTO_UDP and old == 0 and len(old_pair) == 8:
        return  # an IPv4 UDP checksum of 0 means "no checksum"
    if whole:
        buf[start + offset:start + offset + 2] = b"\x00\x00"
        value = internet_checksum(pseudo + bytes(buf[start:end]))
        if protocol == IPPROTO_UDP and value == 0:
            value = 0xFFFF
    else:
        value = _adjust_checksum(old, old_pair, pseudo[:len(old_pair)])
    buf[start + offset:start + offset + 2] = value.to_bytes(2, "big")


def _remap_ipv4(buf: bytearray, pos: int, mapping: dict[bytes, bytes]) -> bool:
    header_len = (buf[pos] & 0x0F) * 4
    if header_len < 20 or len(buf) < pos + header_len:
        return False
    old_pair = bytes(buf[pos + 12:pos + 20])
    new_pair = mapping.get(old_pair[:4], old_pair[:4]) + mapping.get(old_pair[4:], old_pair[4:])
    if new_pair == old_pair:
        return False
    buf[pos + 12:pos + 20] = new_pair
    buf[pos + 10:pos + 12] = b"\x00\x00"
    buf[pos + 10:pos + 12] = internet_checksum(bytes(buf[pos:pos + header_len])).to_bytes(2, "big")

    total_len = int.from_bytes(buf[pos + 2:pos + 4], "big")
    flags_offset = int.from_bytes(buf[pos + 6:pos + 8], "big")
    protocol = buf[pos + 9]
    if flags_offset & 0x1FFF:
        return True  # a later fragment carries no transport header
    whole = not flags_offset & 0x2000 and len(buf) >= pos + total_len
    end = pos + total_len
    pseudo = new_pair + bytes([0, protocol]) + (total_len - header_len).to_bytes(2, "big")
    _fix_transport(buf, pos + header_len, end, protocol, pseudo, old_pair, whole)
    return True


def _remap_ipv6(buf: bytearray, pos: int, mapping: dict[bytes, bytes]) -> bool:
    old_pair = bytes(buf[pos + 8:pos + 40])
    new_pair = mapping.get(old_pair[:16], old_pair[:16]) + mapping.get(old_pair[16:], old_pair[16:])
    if new_pair == old_pair:
        return False
    buf[pos + 8:pos + 40] = new_pair

    payload_len = int.from_bytes(buf[pos + 4:pos + 6], "big")
    end = pos + 40 + payload_len
    next_header, cursor, fragmented = buf[pos + 6], pos + 40, False
    while next_header in IPV6_EXTENSION_HEADERS + (IPV6_FRAGMENT_HEADER,) and len(buf) >= cursor + 8:
        if next_header == IPV6_FRAGMENT_HEADER:
            fragmented = True
            if int.from_bytes(buf[cursor + 2:cursor + 4], "big") & 0xFFF8:
                return True  # a later fragment carries no transport header
            next_header, cursor = buf[cursor], cursor + 8
        else:
            next_header, cursor = buf[cursor], cursor + (buf[cursor + 1] + 1) * 8
    whole = not fragmented and len(buf) >= end
    pseudo = new_pair + (end - cursor).to_bytes(4, "big") + bytes([0, 0, 0, next_header])
    _fix_transport(buf, cursor, end, next_header, pseudo, old_pair, whole)
    return True


def _remap_arp(buf: bytearray, pos: int, mapping: dict[bytes, bytes]) -> bool:
    if len(buf) < pos + 8:
        return False
    hardware_len, protocol_len = buf[pos + 4], buf[pos + 5]
    if protocol_len != 4 or len(buf) < pos + 8 + 2 * (hardware_len + 4):
        return False
    changed = False
    for offset in (pos + 8 + hardware_len, pos + 8 + 2 * hardware_len + 4):
        old = bytes(buf[offset:offset + 4])
        if old in mapping:
            buf[offset:offset + 4] = mapping[old]
            changed = True
    return changed


def remap_frame(frame: Frame, mapping: dict[bytes, bytes]) -> tuple[Frame, bool]:
    """Return the frame with its addresses mapped and checksums fixed, and whether it changed."""
    located = _network_offset(frame)
    if located is None or not mapping:
        return frame, False
    pos, ethertype = located
    buf = bytearray(frame.data)
    if ethertype == ETHERTYPE_IPV4 and len(buf) >= pos + 20 and buf[pos] >> 4 == 4:
        changed = _remap_ipv4(buf, pos, mapping)
    elif ethertype == ETHERTYPE_IPV6 and len(buf) >= pos + 40 and buf[pos] >> 4 == 6:
        changed = _remap_ipv6(buf, pos, mapping)
    elif ethertype == ETHERTYPE_ARP:
        changed = _remap_arp(buf, pos, mapping)
    else:
        changed = False
    if not changed:
        return frame, False
    return Frame(frame.timestamp_ns, frame.link_type, bytes(buf), frame.wire_len), True


# Mixing -----------------------------------------------------------------------


def labels_path_for(capture_path: str | Path) -> Path:
    """Return where the labels file of ``capture_path`` goes (``OUT.labels.csv`` beside ``OUT.pcapng``)."""
    path = Path(capture_path)
    name = path.name
    for suffix in (".pcapng.gz", ".pcap.gz", ".pcapng", ".pcap"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".labels.csv")


def _frame_ranges(injected: list[bool]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for number, is_injected in enumerate(injected, start=1):
        if not is_injected:
            continue
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1] = (ranges[-1][0], number)
        else:
            ranges.append((number, number))
    return ranges


def mix_captures(
    background_path: str | Path,
    attack_path: str | Path,
    out_path: str | Path,
    *,
    offset_s: float,
    remap: str | Path = "auto",
    attack_name: str | None = None,
) -> MixResult:
    """Inject the attack capture into the background and write the mix and its labels.

    Args:
        background_path: the benign capture.
        attack_path: the capture whose every frame is labelled anomalous.
        out_path: the pcapng file to write; the labels go beside it.
        offset_s: seconds from the background's first frame to the attack's
            first frame in the output, at least 0.
        remap: ``auto`` (map the attack's hosts onto the background's most
            active ones), ``none`` (keep the addresses), or the path of an
            address map CSV (``attack_addr,background_addr``).
        attack_name: the attack column of the labels; the attack file's stem
            when omitted.

    Raises:
        MixError: for an unreadable or empty capture or address map.
        ValueError: for a negative offset.
    """
    background_path, attack_path, out_path = Path(background_path), Path(attack_path), Path(out_path)
    if offset_s < 0:
        raise ValueError(f"offset_s must be at least 0 seconds, got {offset_s}")
    background = read_capture(background_path)
    attack = read_capture(attack_path)
    for path, frames in ((background_path, background), (attack_path, attack)):
        if not frames:
            raise MixError(f"{path}: the capture holds no frames, so there is nothing to mix")

    if str(remap) == "none":
        mapping: dict[bytes, bytes] = {}
    elif str(remap) == "auto":
        mapping = auto_address_map(background, attack)
    else:
        mapping = read_address_map(remap)

    shift_ns = min(frame.timestamp_ns for frame in background) + round(offset_s * 1e9) - min(frame.timestamp_ns for frame in attack)
    background_end_ns = max(frame.timestamp_ns for frame in background)
    recomputed = 0
    shifted = []
    for frame in attack:
        moved, changed = remap_frame(frame, mapping)
        recomputed += changed
        shifted.append(Frame(moved.timestamp_ns + shift_ns, moved.link_type, moved.data, moved.wire_len))
    if min(frame.timestamp_ns for frame in shifted) > background_end_ns:
        logger.warning("The offset %.3f s puts the attack after the background's last frame; the mix has no overlap", offset_s)

    # A stable sort keeps each capture's own order, and a background frame before
    # an attack frame of the same timestamp.
    tagged = [(frame.timestamp_ns, 0, index, frame) for index, frame in enumerate(background)]
    tagged += [(frame.timestamp_ns, 1, index, frame) for index, frame in enumerate(shifted)]
    tagged.sort(key=lambda item: item[:3])
    frames = [item[3] for item in tagged]
    ranges = _frame_ranges([item[1] == 1 for item in tagged])

    write_pcapng(out_path, frames)
    labels_path = labels_path_for(out_path)
    name = attack_name or attack_path.name.split(".")[0]
    with labels_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_frame", "last_frame", "label", "attack"])
        writer.writerows([first, last, "anomaly", name] for first, last in ranges)

    address_map = {str(ipaddress.ip_address(source)): str(ipaddress.ip_address(target)) for source, target in mapping.items()}
    logger.info("Mixed %d attack frames into %d background frames: %s (%d labelled range(s), %d address(es) remapped)",
                len(attack), len(background), out_path, len(ranges), len(address_map))
    return MixResult(out_path, labels_path, len(frames), len(attack), ranges, address_map, recomputed,
                     min(frame.timestamp_ns for frame in shifted))
