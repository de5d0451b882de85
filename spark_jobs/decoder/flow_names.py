"""Protocol names that depend on earlier frames of the same flow.

Wireshark keeps per-conversation state, so some names follow from what a flow
sent before. A TLS session negotiated as 1.3 in the server hello shows
"TLSv1.3" from then on. An SSH connection shows "SSH" for the first version
banner and "SSHv2" afterwards. A UDP flow that opened with a QUIC or Google
QUIC long header shows QUIC or GQUIC for its short-header packets too.

``FlowNames`` keeps that state for one capture across record batches. Only the
rare anchor frames (server hellos, banners, long headers) are looked at in
Python; marking the rest of each flow is vectorised. The state keeps one entry
per anchored flow, so it grows with the number of such sessions, not frames.
"""

from __future__ import annotations

import struct

import numpy as np

from spark_jobs.decoder.dissection import Dissection
from spark_jobs.decoder.protocol_names import HTTP_PORT_SET, QUIC_PORT_SET, SMB_PORT_SET, TLS_PORT_SET
from spark_jobs.decoder.tcp_pdus import HTTP_KIND, NBSS_KIND, TLS_KIND, TcpPdus

TLS_HANDSHAKE = 22
TLS_SERVER_HELLO = 2
TLS_EXTENSION_SUPPORTED_VERSIONS = 0x002B
TLS_VERSION_1_3 = 0x0304
SSH_BANNER_WORD = int.from_bytes(b"SSH-", "big")

_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_HASH_MIX = np.uint64(0xBF58476D1CE4E5B9)


def _endpoint_hashes(dissection: Dissection, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the (address, port) of the source and destination."""
    frames = dissection.frames.subset(rows)
    version = dissection.ip_version[rows]

    def address_hash(pos: np.ndarray) -> np.ndarray:
        ipv4 = frames.u32(pos).astype(np.uint64)
        # Only IPv6 rows use these bytes, and their header was verified as captured.
        wide = frames.raw16(pos).view(np.uint64).reshape(-1, 2)
        ipv6 = wide[:, 0] * _HASH_MULTIPLIER ^ wide[:, 1]
        return np.where(version == 4, ipv4, ipv6)

    with np.errstate(over="ignore"):
        src = address_hash(dissection.src_ip_pos[rows]) * _HASH_MULTIPLIER + dissection.src_port[rows].astype(np.uint64)
        dst = address_hash(dissection.dst_ip_pos[rows]) * _HASH_MULTIPLIER + dissection.dst_port[rows].astype(np.uint64)
    return src, dst


def flow_keys(dissection: Dissection, rows: np.ndarray) -> np.ndarray:
    """Direction-agnostic 64-bit keys of the (addresses, ports, IP protocol) five-tuple.

    The key is a hash: two flows share a key with probability about 2**-64.
    """
    src, dst = _endpoint_hashes(dissection, rows)
    with np.errstate(over="ignore"):
        key = (np.minimum(src, dst) * _HASH_MIX) ^ np.maximum(src, dst)
        return key * _HASH_MULTIPLIER + dissection.ip_proto[rows].astype(np.uint64)


def direction_keys(dissection: Dissection, rows: np.ndarray) -> np.ndarray:
    """Like ``flow_keys``, but the two directions of a connection get different keys."""
    src, dst = _endpoint_hashes(dissection, rows)
    with np.errstate(over="ignore"):
        key = (src * _HASH_MIX) ^ dst
        return key * _HASH_MULTIPLIER + dissection.ip_proto[rows].astype(np.uint64)


class FlowNames:
    """Per-capture flow state for names that depend on earlier frames."""

    def __init__(self) -> None:
        # name -> keys of flows that carry it from an earlier batch on
        self._flows: dict[str, set[int]] = {"TLSv1.3": set(), "SSHv2": set(), "QUIC": set(), "GQUIC": set()}
        self._tcp_pdus = TcpPdus()

    def apply(self, dissection: Dissection, codes: np.ndarray) -> None:
        """Rename frames in ``codes`` (protocol-name codes) using and updating the flow state."""
        names = dissection.names
        count = len(codes)
        payload = (dissection.payload_len > 0) & (dissection.src_port >= 0) & ~dissection.is_fragment
        tcp = payload & (dissection.ip_proto == 6)
        udp = payload & (dissection.ip_proto == 17)

        self._name_tcp_records(dissection, codes, tcp)
        tls_codes = [names.code(name) for name in ("TLSv1", "TLSv1.1", "TLSv1.2", "SSLv3")]
        tls = tcp & np.isin(codes, tls_codes)
        src_port = np.maximum(dissection.src_port, 0)
        dst_port = np.maximum(dissection.dst_port, 0)
        quic_port = udp & (QUIC_PORT_SET[src_port] | QUIC_PORT_SET[dst_port])
        # Frames that take a flow's name once the flow is anchored.
        members = {"TLSv1.3": tls, "SSHv2": tcp, "QUIC": quic_port, "GQUIC": quic_port}

        # (name, row) of frames that give their flow a name, in row order.
        anchors = [("TLSv1.3", row) for row in self._tls13_server_hellos(dissection, np.nonzero(tls)[0])]
        anchors += self._ssh_banners(dissection, np.nonzero(tcp)[0], codes)
        anchors += self._quic_long_headers(dissection, np.nonzero(quic_port)[0])
        if not anchors and not any(self._flows.values()):
            return

        candidates = tls | quic_port
        if self._flows["SSHv2"] or any(name == "SSHv2" for name, _ in anchors):
            candidates |= tcp
        candidates[[row for _, row in anchors]] = True
        candidate_rows = np.nonzero(candidates)[0]
        keys = np.zeros(count, dtype=np.uint64)
        keys[candidate_rows] = flow_keys(dissection, candidate_rows)
        row_index = np.arange(count)

        for name, member in members.items():
            known = self._flows[name]
            if known:
                known_keys = np.fromiter(known, dtype=np.uint64, count=len(known))
                codes[member & np.isin(keys, known_keys)] = names.code(name)
            for anchor_name, row in anchors:
                key = int(keys[row])
                if anchor_name != name or key in known:
                    continue
                known.add(key)
                # The SSH banner that anchors a flow keeps its own name, "SSH".
                after = row_index > row if name == "SSHv2" else row_index >= row
                codes[member & (keys == keys[row]) & after] = names.code(name)

    def _name_tcp_records(self, dissection: Dissection, codes: np.ndarray, tcp: np.ndarray) -> None:
        """Name TLS, NBSS and HTTP segments by message boundaries (see ``tcp_pdus``)."""
        src_port = np.maximum(dissection.src_port, 0)
        dst_port = np.maximum(dissection.dst_port, 0)
        on_tls = TLS_PORT_SET[src_port] | TLS_PORT_SET[dst_port]
        on_smb = SMB_PORT_SET[src_port] | SMB_PORT_SET[dst_port]
        on_http = HTTP_PORT_SET[src_port] | HTTP_PORT_SET[dst_port]
        rows = np.nonzero(tcp & (on_tls | on_smb | on_http))[0]
        if not len(rows):
            return
        kinds = np.where(on_tls[rows], TLS_KIND, np.where(on_smb[rows], NBSS_KIND, HTTP_KIND))
        self._tcp_pdus.rename(dissection, codes, rows, direction_keys(dissection, rows), kinds)

    def _payload(self, dissection: Dissection, row: int, length: int) -> bytes:
        frames = dissection.frames
        start = int(frames.start[row] + dissection.payload_off[row])
        end = int(frames.start[row] + frames.cap_len[row])
        return bytes(frames.buf[start:min(end, start + length)])

    def _tls13_server_hellos(self, dissection: Dissection, rows: np.ndarray) -> list[int]:
        handshakes = rows[(dissection.payload_word[rows] >> 24) == TLS_HANDSHAKE]
        handshake_type = dissection.frames.subset(handshakes).u8(dissection.payload_off[handshakes] + 5)
        found = []
        for row in handshakes[handshake_type == TLS_SERVER_HELLO]:
            if _server_hello_version(self._payload(dissection, int(row), 2048)) == TLS_VERSION_1_3:
                found.append(int(row))
        return found

    def _ssh_banners(self, dissection: Dissection, rows: np.ndarray, codes: np.ndarray) -> list[tuple[str, int]]:
        banner = dissection.payload_word[rows] == SSH_BANNER_WORD
        anchors = []
        for row in rows[banner]:
            # The first banner of a connection is "SSH"; every later SSH frame
            # "SSHv2" (set by ``apply``, also on a second banner).
            codes[row] = dissection.names.code("SSH")
            anchors.append(("SSHv2", int(row)))
        return anchors

    def _quic_long_headers(self, dissection: Dissection, rows: np.ndarray) -> list[tuple[str, int]]:
        first = dissection.payload_word[rows] >> 24
        rows = rows[(first >= 0) & (((first & 0x80) != 0) | ((first & 0x01) == 1))]
        frames = dissection.frames.subset(rows)
        pos = dissection.payload_off[rows]
        first = frames.u8(pos)
        # IETF QUIC long header: form and fixed bits set, a non-zero version.
        ietf = ((first & 0xC0) == 0xC0) & (frames.u32(pos + 1) > 0)
        # Google QUIC: public flags with the version bit, an 8-byte connection
        # id, then a version tag "Q0nn".
        google = (first >= 0) & ((first & 0x01) == 1) & ((first & 0x80) == 0) & (frames.u16(pos + 9) == 0x5130)
        anchors = [("QUIC", int(row)) for row in rows[ietf & ~google]]
        anchors += [("GQUIC", int(row)) for row in rows[google]]
        return anchors


def _server_hello_version(record: bytes) -> int | None:
    """The version a TLS server hello selects: supported_versions if present, else the legacy field."""
    try:
        # record header 5, handshake header 4, legacy version 2, random 32
        pos = 5 + 4
        legacy_version = struct.unpack_from("!H", record, pos)[0]
        pos += 2 + 32
        pos += 1 + record[pos]                     # session id
        pos += 2 + 1                               # cipher suite, compression method
        extensions_end = pos + 2 + struct.unpack_from("!H", record, pos)[0]
        pos += 2
        while pos + 4 <= min(extensions_end, len(record)):
            extension_type, length = struct.unpack_from("!HH", record, pos)
            if extension_type == TLS_EXTENSION_SUPPORTED_VERSIONS and length == 2:
                return struct.unpack_from("!H", record, pos + 4)[0]
            pos += 4 + length
        return legacy_version
    except (struct.error, IndexError):
        return None
