"""IPv4 and IPv6 headers, IPv6 extension headers and IP fragments."""

from __future__ import annotations

import numba
import numpy as np

from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.frame_bytes import MISSING
from spark_jobs.decoder.link import ETHERTYPE_IPV4, ETHERTYPE_IPV6
from spark_jobs.decoder.record_walk import read_u32

IPV4_MIN_HEADER_BYTES = 20
IPV6_HEADER_BYTES = 40
IPV4_MORE_FRAGMENTS = 0x2000
IPV4_OFFSET_MASK = 0x1FFF

# IPv6 extension headers whose length is (byte 1 + 1) * 8: hop-by-hop,
# routing, destination options, mobility, HIP, shim6. Fragment (44, fixed 8
# bytes) and AH (51, (byte 1 + 2) * 4) are handled apart. Anything else ends
# the chain, so an unknown next header is never walked as if it were one.
IPV6_EXTENSION_HEADERS = (0, 43, 60, 135, 139, 140)
IPV6_FRAGMENT = 44
IPV6_AH = 51
MAX_IPV6_EXTENSION_HEADERS = 8


@numba.njit(cache=True, nogil=True)
def _walk_ipv6_extensions(
    buf, start, cap_len, valid, next_header, pos, fragment_id, is_fragment, first_fragment
) -> None:
    """Follow each frame's chain of IPv6 extension headers, updating the arrays in place.

    Chains differ in length from frame to frame, so numpy would need one pass
    over all frames per header. Compiled code walks each frame once instead.
    On return ``next_header`` is the upper-layer protocol and ``pos`` its
    offset in the frame. The walk stops at any other next header, at a header
    not wholly captured (its type then stays the protocol), after a non-first
    fragment header (nothing after it can be read), and after
    ``MAX_IPV6_EXTENSION_HEADERS`` headers.
    """
    for row in range(start.shape[0]):
        if not valid[row]:
            continue
        base = start[row]
        for _ in range(MAX_IPV6_EXTENSION_HEADERS):
            header = next_header[row]
            at = pos[row]
            is_extension = False
            for known in IPV6_EXTENSION_HEADERS:
                if header == known:
                    is_extension = True
            if not (is_extension or header == IPV6_FRAGMENT or header == IPV6_AH):
                break
            if at < 0 or at + 8 > cap_len[row]:
                break

            length_byte = np.int64(buf[base + at + 1])
            if header == IPV6_FRAGMENT:
                field = (np.int64(buf[base + at + 2]) << 8) | np.int64(buf[base + at + 3])
                fragment_id[row] = read_u32(buf, base + at + 4, True)
                later = (field >> 3) > 0
                # An atomic fragment (offset 0, M clear) is a whole datagram.
                if later or (field & 1) == 1:
                    is_fragment[row] = True
                if later:
                    first_fragment[row] = False
                header_len = 8
            elif header == IPV6_AH:
                header_len = (length_byte + 2) * 4
            else:
                header_len = (length_byte + 1) * 8

            next_header[row] = np.int64(buf[base + at])
            pos[row] = at + header_len
            if not first_fragment[row]:
                break


def dissect_ip(dissection: Dissection, rows: np.ndarray) -> None:
    """Decode the IPv4 or IPv6 header at ``net_off`` for the frames at ``rows``.

    Sets addresses, protocol, TTL or hop limit, IP id and fragment fields, and
    ``l4_off`` / ``l4_len`` (the transport header position and the length of
    the IP payload from the IP header's own length fields, never from cap_len).
    """
    net_type = dissection.net_type[rows]
    ipv4 = rows[net_type == ETHERTYPE_IPV4]
    ipv6 = rows[net_type == ETHERTYPE_IPV6]
    if len(ipv4):
        _ipv4(dissection, ipv4)
    if len(ipv6):
        _ipv6(dissection, ipv6)


def _ipv4(dissection: Dissection, rows: np.ndarray) -> None:
    frames = dissection.frames.subset(rows)
    base = dissection.net_off[rows]
    first = frames.u8(base)
    header_len = (first & 0x0F) * 4
    valid = ((first >> 4) == 4) & (header_len >= IPV4_MIN_HEADER_BYTES) & frames.has(base, IPV4_MIN_HEADER_BYTES)

    total_len = frames.u16(base + 2, checked=False)
    # TCP segmentation offload leaves a total length of 0 in captures taken on
    # the sending host. The frame length is then the only length.
    wire_len = dissection.frame_len[rows] - base
    total_len = np.where(total_len == 0, wire_len, total_len)
    flags_offset = frames.u16(base + 6, checked=False)
    more_fragments = (flags_offset & IPV4_MORE_FRAGMENTS) != 0
    fragment_offset = flags_offset & IPV4_OFFSET_MASK

    def where_valid(values: np.ndarray) -> np.ndarray:
        return np.where(valid, values, MISSING)

    dissection.assign(
        rows,
        ip_version=where_valid(np.full(len(rows), 4)),
        src_ip_pos=where_valid(base + 12),
        dst_ip_pos=where_valid(base + 16),
        ip_proto=where_valid(frames.u8(base + 9, checked=False)),
        ttl=where_valid(frames.u8(base + 8, checked=False)),
        ip_id=where_valid(frames.u16(base + 4, checked=False)),
        l4_off=where_valid(base + header_len),
        l4_len=where_valid(np.maximum(total_len - header_len, 0)),
    )
    dissection.is_fragment[rows] = valid & (more_fragments | (fragment_offset > 0))
    dissection.first_fragment[rows] = ~valid | (fragment_offset == 0)


def _ipv6(dissection: Dissection, rows: np.ndarray) -> None:
    frames = dissection.frames.subset(rows)
    base = dissection.net_off[rows]
    valid = ((frames.u8(base) >> 4) == 6) & frames.has(base, IPV6_HEADER_BYTES)

    payload_len = frames.u16(base + 4, checked=False)
    # Payload length 0 means a jumbogram (or offload): fall back to the frame length.
    payload_len = np.where(payload_len == 0, dissection.frame_len[rows] - base - IPV6_HEADER_BYTES, payload_len)
    next_header = np.where(valid, frames.u8(base + 6, checked=False), MISSING)
    pos = base + IPV6_HEADER_BYTES
    fragment_id = np.full(len(rows), MISSING, dtype=np.int64)
    is_fragment = np.zeros(len(rows), dtype=bool)
    first_fragment = np.ones(len(rows), dtype=bool)
    _walk_ipv6_extensions(
        frames.buf, frames.start, frames.cap_len, valid, next_header, pos, fragment_id, is_fragment, first_fragment
    )

    def where_valid(values: np.ndarray) -> np.ndarray:
        return np.where(valid, values, MISSING)

    dissection.assign(
        rows,
        ip_version=where_valid(np.full(len(rows), 6)),
        src_ip_pos=where_valid(base + 8),
        dst_ip_pos=where_valid(base + 24),
        ip_proto=where_valid(next_header),
        ttl=where_valid(frames.u8(base + 7, checked=False)),
        ip_id=where_valid(fragment_id),
        l4_off=where_valid(pos),
        l4_len=where_valid(np.maximum(payload_len - (pos - base - IPV6_HEADER_BYTES), 0)),
    )
    dissection.is_fragment[rows] = valid & is_fragment
    dissection.first_fragment[rows] = ~valid | first_fragment
