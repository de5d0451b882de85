"""Every public capture decodes like tshark reads it.

For each capture the test runs tshark once and compares, frame by frame, the
frame count, timestamp, lengths, Source and Destination columns, ports and the
Protocol column. Each field must agree on at least 99.9% of frames, except
where ``EXCEPTIONS`` lists a lower floor with the reason.

Rules applied to tshark's output before comparing:

* 802.11 columns carry a role suffix such as " (RA)"; it is removed.
* ICMP and ICMPv6 rows are not compared on ports: tshark reports the ports of
  the packet quoted inside an ICMP error, which the decoder keeps null.
* tshark prints a microsecond field of 10^6 or more verbatim (for example
  "…534.1000046000"); such a fraction is read as nanoseconds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from spark_jobs.decoder import decode_to_table

CAPTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "captures"
CAPTURE_NAMES = sorted(
    path.name for path in CAPTURES.glob("*") if path.suffix in (".pcap", ".pcapng", ".cap")
) if CAPTURES.is_dir() else []

TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "frame.len", "frame.cap_len",
    "_ws.col.Source", "_ws.col.Destination",
    "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "_ws.col.Protocol",
]
MIN_AGREEMENT = 0.999
ROLE_SUFFIXES = (" (RA)", " (TA)", " (BSSID)")

SMB_PIPES = (
    "Wireshark dissects DCE/RPC services carried in SMB named pipes (SVCCTL, "
    "WINREG, SRVSVC, MDSSVC and others); the decoder stops at SMB/SMB2"
)
HEURISTICS = "Wireshark's heuristic dissectors name application protocols on unregistered ports"
RESUMED_TLS = (
    "TLS sessions that the capture joins mid-stream, where Wireshark finds record "
    "boundaries by heuristics; the decoder names such segments TCP"
)

# capture -> field -> (minimum agreement, reason)
EXCEPTIONS: dict[str, dict[str, tuple[float, str]]] = {
    "attack-malware-trickbot.pcap": {"protocol": (0.96, HEURISTICS + " (HTTP on port 7080)")},
    "attack-ssh-bruteforce-guessing.pcap": {
        "protocol": (0.96, "SSH packets that span TCP segments are named TCP by Wireshark's reassembly"),
    },
    "benign-alexa-app-mixed-lan.pcap": {
        "protocol": (0.99, RESUMED_TLS + "; LLC XID frames are named LLC"),
    },
    "benign-anyconnect-vpn-lan-mixed.pcap": {
        "protocol": (0.97, HEURISTICS + " (TLS on unregistered ports, AJP13, HTTP/XML)"),
    },
    "benign-gnutella-p2p-lan-mixed.pcap": {
        "protocol": (0.85, HEURISTICS + " (Mojito, Gnutella, BitTorrent, NAT-PMP)"),
    },
    "gre-various-encaps.pcap": {
        "protocol": (0.97, "CDP carried directly in GRE is not decoded (the frames are named GRE)"),
    },
    "ipv4-fragments-garbage.pcap": {
        "ports": (0.99, "Wireshark reassembles IP fragments and shows the ports on the last "
                        "fragment; the decoder reads them from the first fragment only"),
        "protocol": (0.99, "Wireshark names the last fragment after the reassembled datagram; "
                           "the decoder names every fragment IPv4"),
    },
    "loopback-null-smb2-macos.pcap": {"protocol": (0.93, SMB_PIPES)},
    "pcapng-tor-browsing.pcapng": {
        "protocol": (0.99, "Dropbox LAN sync (DB-LSP-DISC/JSON) is not recognised; " + RESUMED_TLS),
    },
    "sll-kakaotalk-android.pcap": {
        "protocol": (0.99, "XMPP/XML is named XMPP; " + RESUMED_TLS),
    },
    "truncated-cut-mid-packet-http.pcap": {
        "protocol": (0.99, "HTTP messages with chunked bodies are not followed across segments"),
    },
    "tunnel-teredo-ipv6-in-udp.pcap": {
        "protocol": (0.95, "a Teredo bubble (IPv6 without payload) is named by its IPv6 header, "
                           "and HTTP/XML is named HTTP"),
        "ports": (0.98, "for a Teredo bubble Wireshark shows the outer UDP ports; the decoder "
                        "decodes the inner IPv6 packet, which has none"),
    },
    "vlan-8021q-smb-file-transfer.pcap": {"protocol": (0.55, SMB_PIPES)},
}


def _run_tshark(path: Path) -> tuple[list[dict[str, str]], subprocess.CompletedProcess]:
    command = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"]
    for field in TSHARK_FIELDS:
        command += ["-e", field]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    rows = [dict(zip(TSHARK_FIELDS, line.split("\t"))) for line in completed.stdout.splitlines()]
    return rows, completed


def _epoch_ns(text: str) -> int:
    seconds, _, fraction = text.partition(".")
    fraction_ns = int(fraction) if len(fraction) > 9 else int((fraction + "000000000")[:9])
    return int(seconds) * 1_000_000_000 + fraction_ns


def _column(text: str) -> str:
    for suffix in ROLE_SUFFIXES:
        text = text.replace(suffix, "")
    return text


def _text(value) -> str:
    return "" if value is None else str(value)


def _comparisons(ours: dict, theirs: dict) -> dict[str, tuple[object, object]]:
    """Field -> (decoder value, tshark value) for one frame."""
    pairs = {
        "timestamp": (ours["timestamp_ns"], _epoch_ns(theirs["frame.time_epoch"])),
        "lengths": ((ours["frame_len"], ours["cap_len"]),
                    (int(theirs["frame.len"]), int(theirs["frame.cap_len"]))),
        "source": (_text(ours["src_addr"]), _column(theirs["_ws.col.Source"])),
        "destination": (_text(ours["dst_addr"]), _column(theirs["_ws.col.Destination"])),
        "protocol": (ours["protocol"], theirs["_ws.col.Protocol"]),
    }
    if ours["ip_proto"] not in (1, 58):
        their_ports = (theirs["tcp.srcport"] or theirs["udp.srcport"], theirs["tcp.dstport"] or theirs["udp.dstport"])
        pairs["ports"] = ((_text(ours["src_port"]), _text(ours["dst_port"])), their_ports)
    return pairs


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("capture_name", CAPTURE_NAMES or ["<no captures>"])
def test_capture_matches_tshark(captures_dir, capture_name):
    path = captures_dir / capture_name
    table, summary = decode_to_table(path, capture_id=capture_name)
    ours = table.to_pylist()
    theirs, tshark = _run_tshark(path)
    assert summary.error is None
    if summary.truncated:
        # tshark prints every complete frame, then exits with status 2.
        assert tshark.returncode == 2
        assert "cut short in the middle of a packet" in tshark.stderr
    else:
        assert tshark.returncode == 0, tshark.stderr
    assert len(ours) == len(theirs)

    compared: dict[str, int] = {}
    mismatches: dict[str, list[tuple[int, object, object]]] = {}
    for our_row, their_row in zip(ours, theirs):
        for field, (our_value, their_value) in _comparisons(our_row, their_row).items():
            compared[field] = compared.get(field, 0) + 1
            if our_value != their_value:
                mismatches.setdefault(field, []).append((our_row["frame_number"], our_value, their_value))

    exceptions = EXCEPTIONS.get(capture_name, {})
    for field, total in compared.items():
        wrong = mismatches.get(field, [])
        floor, reason = exceptions.get(field, (MIN_AGREEMENT, "no exception"))
        agreement = 1 - len(wrong) / total
        assert agreement >= floor, (
            f"{capture_name}: {field} agrees on {agreement:.4f} of {total} frames, below {floor} "
            f"({reason}); first mismatches (frame, decoder, tshark): {wrong[:5]}"
        )
