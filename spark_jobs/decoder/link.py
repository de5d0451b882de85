"""Link-layer headers: Ethernet with VLAN stacks, Linux cooked v1/v2, raw IP,
BSD loopback, 802.11 with and without radiotap.

Each handler reads the frames of one link type at once and records where the
network layer starts (``net_off``) and what it is (``net_type``, an EtherType).
"""

from __future__ import annotations

import logging

import numpy as np

from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.frame_bytes import MISSING, FrameBytes

logger = logging.getLogger(__name__)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100, 0x9200)
MAX_VLAN_TAGS = 4
ETHERNET_HEADER_BYTES = 14

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_DLT = 12
LINKTYPE_RAW = 101
LINKTYPE_IEEE802_11 = 105
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

# BSD loopback address families that mean IPv6 on the systems that write them
# (NetBSD/OpenBSD 24, FreeBSD 28, macOS 30); 2 is IPv4 everywhere.
BSD_AF_INET = 2
BSD_AF_INET6 = (24, 28, 30)

# LLC service access points and the names Wireshark gives their frames.
LLC_SNAP_SAP = 0xAA
LLC_NAMES = {0x42: "STP", 0xE0: "IPX", 0xF0: "NetBIOS", 0xFE: "ISO", 0x06: "IPv4"}

# Cisco SNAP protocol ids (OUI 00:00:0c).
# Wireshark names Cisco's per-VLAN spanning tree (PVST+) frames STP too.
CISCO_SNAP_NAMES = {0x2000: "CDP", 0x2004: "DTP", 0x010B: "STP", 0x2003: "VTP"}


def dissect_link_layer(dissection: Dissection) -> dict[int, int]:
    """Decode the link layer of every frame.

    Returns:
        Link type -> frame count for link types the decoder does not read;
        those frames keep null fields and the protocol name ``"DLT <n>"``.
    """
    unsupported: dict[int, int] = {}
    for link_type in np.unique(dissection.link_type):
        rows = np.nonzero(dissection.link_type == link_type)[0]
        handler = HANDLERS.get(int(link_type))
        if handler is None:
            unsupported[int(link_type)] = len(rows)
            dissection.link_name[rows] = dissection.names.code(f"DLT {int(link_type)}")
            continue
        handler(dissection, rows, dissection.frames.subset(rows))
    return unsupported


def _too_short(dissection: Dissection, rows: np.ndarray, frames: FrameBytes, header_bytes: int) -> np.ndarray:
    """Mark frames shorter than their link header as malformed; returns the mask."""
    short = frames.cap_len < header_bytes
    dissection.malformed[rows[short]] = True
    return short


def _ethernet_payload(
    dissection: Dissection, rows: np.ndarray, frames: FrameBytes, type_pos: np.ndarray
) -> None:
    """Read VLAN tags and the EtherType at ``type_pos`` (captured in every frame);
    set the network layer fields."""
    ether_type = frames.u16(type_pos, checked=False)
    vlan_id = np.full(len(rows), MISSING, dtype=np.int64)
    inner_vlan_id = vlan_id.copy()

    for _ in range(MAX_VLAN_TAGS):
        tagged = np.isin(ether_type, VLAN_TPIDS)
        if not tagged.any():
            break
        tci = frames.u16(type_pos + 2)
        vid = np.where(tci >= 0, tci & 0x0FFF, MISSING)
        outer = tagged & (vlan_id == MISSING)
        inner = tagged & ~outer & (inner_vlan_id == MISSING)
        vlan_id = np.where(outer, vid, vlan_id)
        inner_vlan_id = np.where(inner, vid, inner_vlan_id)
        type_pos = np.where(tagged, type_pos + 4, type_pos)
        ether_type = np.where(tagged, frames.u16(type_pos), ether_type)

    net_off = type_pos + 2
    eth_type = np.where(ether_type >= 0x0600, ether_type, MISSING)
    net_type = eth_type.copy()

    # Values up to 1500 are an 802.3 length: an 802.2 LLC header follows.
    llc = (ether_type >= 0) & (ether_type <= 1500)
    if llc.any():
        _llc(dissection, rows, frames, llc, net_off, net_type, eth_type)

    dissection.assign(
        rows, vlan_id=vlan_id, inner_vlan_id=inner_vlan_id, eth_type=eth_type,
        net_type=net_type, net_off=np.where(net_type >= 0, net_off, MISSING),
    )


def _llc(
    dissection: Dissection,
    rows: np.ndarray,
    frames: FrameBytes,
    llc: np.ndarray,
    net_off: np.ndarray,
    net_type: np.ndarray,
    eth_type: np.ndarray,
) -> None:
    """Decode 802.2 LLC (and SNAP) headers at ``net_off`` for the frames in ``llc``.

    Updates ``net_off``, ``net_type`` and ``eth_type`` in place for SNAP frames;
    other LLC frames get a protocol name from their DSAP.
    """
    dsap = frames.u8(net_off)
    snap = llc & (dsap == LLC_SNAP_SAP) & (frames.u8(net_off + 1) == LLC_SNAP_SAP) & frames.has(net_off, 8)
    oui = (frames.u8(net_off + 3) << 16) | (frames.u8(net_off + 4) << 8) | frames.u8(net_off + 5)
    snap_type = frames.u16(net_off + 6)
    ether_snap = snap & (oui == 0) & (snap_type >= 0x0600)
    cisco = snap & (oui == 0x00000C)

    net_type[ether_snap] = snap_type[ether_snap]
    eth_type[ether_snap] = snap_type[ether_snap]
    net_off[ether_snap] += 8

    names = dissection.names
    codes = np.full(len(rows), names.code("LLC"), dtype=np.int64)
    for protocol_id, name in CISCO_SNAP_NAMES.items():
        codes[cisco & (snap_type == protocol_id)] = names.code(name)
    for sap, name in LLC_NAMES.items():
        codes[~snap & (dsap == sap)] = names.code(name)
    named = llc & ~ether_snap
    dissection.link_name[rows[named]] = codes[named]


def dissect_ethernet(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    short = _too_short(dissection, rows, frames, ETHERNET_HEADER_BYTES)
    ok = ~short
    rows, frames = rows[ok], frames.subset(np.nonzero(ok)[0])
    dissection.assign(rows, dst_mac_pos=np.zeros(len(rows), np.int64), src_mac_pos=np.full(len(rows), 6))
    _ethernet_payload(dissection, rows, frames, np.full(len(rows), 12, dtype=np.int64))


def _set_network(
    dissection: Dissection, rows: np.ndarray, ether_type: np.ndarray, net_off: np.ndarray | int
) -> None:
    eth_type = np.where(ether_type >= 0x0600, ether_type, MISSING)
    net_off = np.broadcast_to(net_off, eth_type.shape)
    dissection.assign(
        rows, eth_type=eth_type, net_type=eth_type, net_off=np.where(eth_type >= 0, net_off, MISSING)
    )


def dissect_linux_sll(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    """Linux cooked capture v1: 16-byte header, the sender's address at byte 6."""
    short = _too_short(dissection, rows, frames, 16)
    rows, frames = rows[~short], frames.subset(np.nonzero(~short)[0])
    address_len = frames.u16(4)
    dissection.assign(rows, src_mac_pos=np.where(address_len == 6, 6, MISSING))
    protocol = frames.u16(14)
    _cooked_protocol(dissection, rows, frames, protocol, 16)


def dissect_linux_sll2(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    """Linux cooked capture v2: 20-byte header, protocol first, the address at byte 12."""
    short = _too_short(dissection, rows, frames, 20)
    rows, frames = rows[~short], frames.subset(np.nonzero(~short)[0])
    address_len = frames.u8(11)
    dissection.assign(rows, src_mac_pos=np.where(address_len == 6, 12, MISSING))
    protocol = frames.u16(0)
    _cooked_protocol(dissection, rows, frames, protocol, 20)


def _cooked_protocol(
    dissection: Dissection, rows: np.ndarray, frames: FrameBytes, protocol: np.ndarray, header: int
) -> None:
    _set_network(dissection, rows, protocol, header)
    # Protocol 0x0004 means an 802.2 LLC frame follows the cooked header.
    llc = protocol == 0x0004
    if llc.any():
        net_off = np.full(len(rows), header, dtype=np.int64)
        net_type = dissection.net_type[rows]
        eth_type = dissection.eth_type[rows]
        _llc(dissection, rows, frames, llc, net_off, net_type, eth_type)
        dissection.assign(
            rows, net_type=net_type, eth_type=eth_type,
            net_off=np.where(net_type >= 0, net_off, MISSING),
        )


def dissect_raw_ip(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    """Raw IP: the version nibble of the first byte decides IPv4 or IPv6."""
    version = frames.u8(0) >> 4
    ether_type = np.where(version == 4, ETHERTYPE_IPV4, np.where(version == 6, ETHERTYPE_IPV6, MISSING))
    dissection.assign(rows, net_type=ether_type, net_off=np.where(ether_type >= 0, 0, MISSING))
    dissection.malformed[rows[frames.cap_len < 1]] = True


def dissect_bsd_null(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    """BSD loopback: a 4-byte address family in the byte order of the writing host."""
    _loopback(dissection, rows, frames, network_order=False)


def dissect_bsd_loop(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    """OpenBSD loopback (LOOP): like NULL, but the family is in network byte order."""
    _loopback(dissection, rows, frames, network_order=True)


def _loopback(dissection: Dissection, rows: np.ndarray, frames: FrameBytes, *, network_order: bool) -> None:
    short = _too_short(dissection, rows, frames, 4)
    rows, frames = rows[~short], frames.subset(np.nonzero(~short)[0])
    family = frames.u32(0, little=not network_order)
    if not network_order:
        # A family written big-endian reads as a value with only the high bits set.
        swapped = (family & 0xFFFF) == 0
        family = np.where(swapped, family >> 24, family)
    ether_type = np.where(
        family == BSD_AF_INET, ETHERTYPE_IPV4, np.where(np.isin(family, BSD_AF_INET6), ETHERTYPE_IPV6, MISSING)
    )
    dissection.assign(rows, net_type=ether_type, net_off=np.where(ether_type >= 0, 4, MISSING))
    dissection.link_name[rows[ether_type < 0]] = dissection.names.code("NULL")


def dissect_radiotap(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    """Radiotap: a little-endian header length at byte 2, then an 802.11 frame."""
    short = _too_short(dissection, rows, frames, 8)
    rows, frames = rows[~short], frames.subset(np.nonzero(~short)[0])
    _ieee802_11(dissection, rows, frames, frames.u16(2, little=True))


def dissect_ieee802_11(dissection: Dissection, rows: np.ndarray, frames: FrameBytes) -> None:
    _ieee802_11(dissection, rows, frames, np.zeros(len(rows), dtype=np.int64))


def _ieee802_11(dissection: Dissection, rows: np.ndarray, frames: FrameBytes, base: np.ndarray) -> None:
    """802.11 MAC header at ``base``; data frames continue through LLC/SNAP.

    Source and destination follow the DS bits as Wireshark's columns do: the
    SA and DA of data frames, A2 and A1 of management frames, and for control
    frames the receiver (A1) plus the transmitter (A2) where the frame has one.
    """
    frame_control = frames.u8(base)
    flags = frames.u8(base + 1)
    short = (frame_control < 0) | ~frames.has(base, 10)
    dissection.malformed[rows[short]] = True

    frame_type = (frame_control >> 2) & 0x3
    subtype = frame_control >> 4
    ds_bits = flags & 0x3
    a1, a2, a3, a4 = base + 4, base + 10, base + 16, base + 24

    management = ~short & (frame_type == 0)
    control = ~short & (frame_type == 1)
    data = ~short & (frame_type == 2)

    dst = np.full(len(rows), MISSING, dtype=np.int64)
    src = dst.copy()
    dst[management | control] = a1[management | control]
    src[management] = a2[management]
    # ACK (13) and CTS (12) carry only the receiver address.
    with_transmitter = control & ~np.isin(subtype, (12, 13)) & frames.has(a2, 6)
    src[with_transmitter] = a2[with_transmitter]

    dst = np.where(data & np.isin(ds_bits, (1, 3)), a3, np.where(data, a1, dst))
    src = np.where(data & (ds_bits == 0) | data & (ds_bits == 1), a2, src)
    src = np.where(data & (ds_bits == 2), a3, src)
    src = np.where(data & (ds_bits == 3), a4, src)
    src = np.where(frames.has(src, 6), src, MISSING)
    dst = np.where(frames.has(dst, 6), dst, MISSING)
    dissection.assign(rows, src_mac_pos=src, dst_mac_pos=dst)

    names = dissection.names
    name = np.full(len(rows), names.code("802.11"), dtype=np.int64)

    # Data frames: QoS subtypes add 2 bytes, four-address frames 6, and an HT
    # control field 4 more when the order bit is set on a QoS frame.
    qos = (subtype & 0x8) != 0
    header = 24 + np.where(ds_bits == 3, 6, 0) + np.where(qos, 2, 0)
    header = header + np.where(qos & ((flags & 0x80) != 0), 4, 0)
    protected = (flags & 0x40) != 0
    has_body = data & ((subtype & 0x4) == 0) & ~protected
    llc_pos = base + header
    snap = has_body & (frames.u16(llc_pos) == 0xAAAA) & (frames.u8(llc_pos + 2) == 0x03)
    ether_type = np.where(snap, frames.u16(llc_pos + 6), MISSING)
    ether_type = np.where(ether_type >= 0x0600, ether_type, MISSING)
    dissection.assign(
        rows, eth_type=ether_type, net_type=ether_type,
        net_off=np.where(ether_type >= 0, llc_pos + 8, MISSING),
    )
    unnamed_llc = has_body & ~snap & frames.has(llc_pos, 3)
    name[unnamed_llc] = names.code("LLC")
    keep = ether_type < 0
    dissection.link_name[rows[keep]] = name[keep]


HANDLERS = {
    LINKTYPE_NULL: dissect_bsd_null,
    LINKTYPE_ETHERNET: dissect_ethernet,
    LINKTYPE_RAW_DLT: dissect_raw_ip,
    LINKTYPE_RAW: dissect_raw_ip,
    LINKTYPE_IPV4: dissect_raw_ip,
    LINKTYPE_IPV6: dissect_raw_ip,
    LINKTYPE_IEEE802_11: dissect_ieee802_11,
    LINKTYPE_LOOP: dissect_bsd_loop,
    LINKTYPE_LINUX_SLL: dissect_linux_sll,
    LINKTYPE_IEEE802_11_RADIOTAP: dissect_radiotap,
    LINKTYPE_LINUX_SLL2: dissect_linux_sll2,
}
