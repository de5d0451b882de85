"""Each small field case decodes to the values its situation calls for.

T0 = 1733300000 s; the cases were checked against tshark 4.0.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from spark_jobs.decoder import CaptureDecoder, CaptureError, decode_to_table
from spark_jobs.packet_schema import PACKET_SCHEMA

T0_NS = 1_733_300_000 * 1_000_000_000


def decode(path):
    table, summary = decode_to_table(path, capture_id="case")
    assert table.schema == PACKET_SCHEMA
    return table.to_pylist(), summary


def test_two_link_types_pcapng(cases_dir):
    rows, summary = decode(cases_dir / "two-link-types.pcapng")
    assert summary.format == "pcapng"
    assert len(rows) == 3
    dns = rows[1]
    assert dns["interface_id"] == 1
    assert dns["link_type"] == 113
    assert (dns["src_addr"], dns["src_port"]) == ("192.0.2.30", 5353)
    assert (dns["dst_addr"], dns["dst_port"]) == ("198.51.100.40", 53)
    assert dns["ip_proto"] == 17
    assert dns["protocol"] == "DNS"
    for syn in (rows[0], rows[2]):
        assert syn["link_type"] == 1
        assert (syn["src_addr"], syn["dst_addr"], syn["dst_port"]) == ("192.0.2.10", "198.51.100.20", 443)
        assert syn["tcp_flags"] == 0x02
        assert syn["protocol"] == "TCP"


def test_nanosecond_magic_keeps_100ns(cases_dir):
    rows, summary = decode(cases_dir / "nanosecond-100ns-apart.pcap")
    assert [row["timestamp_ns"] for row in rows] == [T0_NS + 1000, T0_NS + 1100]
    assert rows[1]["inter_arrival_ns"] == 100


def test_big_endian_pcap(cases_dir):
    rows, _ = decode(cases_dir / "big-endian.pcap")
    assert len(rows) == 1
    assert rows[0]["protocol"] == "ARP"
    assert rows[0]["frame_len"] == 42
    assert rows[0]["src_mac"] == "02:00:00:00:00:05"
    assert rows[0]["src_addr"] == "02:00:00:00:00:05"


def test_absurd_caplen_stops_with_located_error(cases_dir):
    path = cases_dir / "absurd-caplen.pcap"
    rows, summary = decode(path)
    assert [row["protocol"] for row in rows] == ["ARP"]
    error = summary.error
    assert isinstance(error, CaptureError)
    assert error.frame_number == 2
    assert error.byte_offset == 82
    assert error.path == str(path)
    assert "absurd-caplen.pcap, frame 2, byte offset 82" in str(error)
    assert "2147483647" in str(error)


def test_truncated_last_record_keeps_complete_frames(cases_dir):
    rows, summary = decode(cases_dir / "truncated-last-record.pcap")
    assert len(rows) == 2
    assert summary.truncated is True
    assert summary.error is None


def test_snaplen_96_frames_flagged(cases_dir):
    rows, summary = decode(cases_dir / "snaplen-96.pcap")
    assert len(rows) == 2
    for row in rows:
        assert (row["frame_len"], row["cap_len"]) == (1514, 96)
        assert row["snaplen_cut"] is True
        assert (row["src_port"], row["dst_port"]) == (40000, 80)
        assert row["ip_proto"] == 6
    assert summary.snaplen_cut_frames == 2


def test_tiny_first_frame_kept_as_malformed(cases_dir):
    rows, summary = decode(cases_dir / "tiny-first-frame.pcap")
    tiny, normal = rows
    assert tiny["malformed"] is True
    assert tiny["cap_len"] == 6
    for field in ("src_mac", "src_addr", "ip_version", "src_port", "eth_type"):
        assert tiny[field] is None
    assert summary.malformed_frames == 1
    assert (normal["src_port"], normal["dst_port"], normal["protocol"]) == (40000, 443, "TCP")


def test_pcapng_content_under_pcap_name(cases_dir):
    rows, summary = decode(cases_dir / "pcapng-named-pcap.pcap")
    assert summary.format == "pcapng"
    assert [row["protocol"] for row in rows] == ["TCP"] * 4


def test_gzip_capture_read_as_stream(cases_dir):
    rows, summary = decode(cases_dir / "gzip-compressed.pcap.gz")
    assert summary.compressed is True
    assert summary.format == "pcap"
    assert [row["ip_proto"] for row in rows] == [6] * 4


def test_linux_cooked_v2_icmp(cases_dir):
    rows, _ = decode(cases_dir / "linux-cooked-v2.pcap")
    assert len(rows) == 1
    row = rows[0]
    assert row["link_type"] == 276
    assert (row["src_addr"], row["dst_addr"], row["protocol"]) == ("192.0.2.9", "198.51.100.9", "ICMP")
    assert row["src_port"] is None


def test_raw_ip_v4_and_v6(cases_dir):
    first, second = decode(cases_dir / "raw-ip-v4-v6.pcap")[0]
    assert (first["ip_version"], first["protocol"]) == (4, "UDP")
    assert (first["src_addr"], first["src_port"], first["dst_addr"], first["dst_port"]) == (
        "192.0.2.1", 1000, "192.0.2.2", 53)
    assert (second["ip_version"], second["protocol"]) == (6, "TCP")
    assert (second["src_addr"], second["src_port"], second["dst_addr"], second["dst_port"]) == (
        "2001:db8::1", 1000, "2001:db8::2", 443)


def test_qinq_vlan_ids_kept(cases_dir):
    first, second = decode(cases_dir / "qinq-vlan.pcap")[0]
    assert (first["vlan_id"], first["inner_vlan_id"]) == (100, 200)
    assert (first["src_addr"], first["src_port"], first["dst_addr"], first["dst_port"]) == (
        "192.0.2.1", 1111, "192.0.2.2", 22)
    assert first["protocol"] == "TCP"
    assert (second["vlan_id"], second["inner_vlan_id"]) == (300, 400)
    assert (second["src_port"], second["dst_port"], second["protocol"]) == (2222, 53, "UDP")


def test_ip_fragments_ports_only_from_first(cases_dir):
    rows, _ = decode(cases_dir / "ip-fragments.pcap")
    assert len(rows) == 4
    assert (rows[0]["src_port"], rows[0]["dst_port"]) == (1111, 2222)
    for row in rows:
        assert row["is_fragment"] is True
        assert row["ip_id"] == 4242
    for row in rows[1:]:
        assert (row["src_port"], row["dst_port"]) == (None, None)


def test_no_transport_layer_frames(cases_dir):
    rows, _ = decode(cases_dir / "no-transport-layer.pcap")
    assert [row["protocol"] for row in rows] == ["ARP", "LLDP", "STP"]
    for row in rows:
        assert row["src_mac"] is not None
        assert row["dst_mac"] is not None
        for field in ("ip_version", "ip_proto", "ttl", "src_port", "dst_port", "is_fragment"):
            assert row[field] is None


def test_timestamps_backwards_clamped_and_flagged(cases_dir):
    rows, _ = decode(cases_dir / "timestamps-backwards.pcap")
    assert [row["timestamp_ns"] for row in rows] == [
        T0_NS + 10_000_000_000, T0_NS + 9_500_000_000, T0_NS + 11_000_000_000]
    assert [row["inter_arrival_ns"] for row in rows] == [0, 0, 1_500_000_000]
    assert [row["timestamp_backwards"] for row in rows] == [False, True, False]


def test_header_only_gives_empty_valid_table(cases_dir):
    table, summary = decode_to_table(cases_dir / "header-only.pcap", capture_id="case")
    assert table.num_rows == 0
    assert table.schema == PACKET_SCHEMA
    assert summary.error is None
    assert summary.format == "pcap"


def test_single_packet(cases_dir):
    rows, summary = decode(cases_dir / "single-packet.pcap")
    assert len(rows) == 1
    assert rows[0]["frame_number"] == 1
    assert rows[0]["inter_arrival_ns"] == 0
    assert summary.error is None


def test_same_timestamp_gives_zero_gap(cases_dir):
    rows, _ = decode(cases_dir / "same-timestamp.pcap")
    assert len(rows) == 2
    assert rows[0]["timestamp_ns"] == rows[1]["timestamp_ns"]
    assert rows[1]["inter_arrival_ns"] == 0
    assert rows[1]["timestamp_backwards"] is False


def test_not_a_capture_gives_clear_error(cases_dir):
    path = cases_dir / "not-a-capture.pcap"
    decoder = CaptureDecoder(path, capture_id="case")
    assert list(decoder.batches()) == []
    error = decoder.summary.error
    assert isinstance(error, CaptureError)
    assert decoder.summary.format is None
    assert str(path) in str(error)
    assert "Not a capture file" in str(error)


def test_empty_file_gives_clear_error(cases_dir):
    path = cases_dir / "empty.pcap"
    table, summary = decode_to_table(path, capture_id="case")
    assert table.num_rows == 0
    assert isinstance(summary.error, CaptureError)
    assert "empty (0 bytes)" in str(summary.error)
    assert str(path) in str(summary.error)


def test_wireshark_csv_export(cases_dir):
    rows, summary = decode(cases_dir / "wireshark-export.csv")
    assert summary.format == "csv"
    assert len(rows) == 4
    arp = rows[3]
    assert arp["protocol"] == "ARP"
    assert arp["src_addr"] == "02:00:00:00:00:05"
    assert arp["src_mac"] == "02:00:00:00:00:05"
    assert arp["dst_addr"] == "Broadcast"
    assert arp["ip_version"] is None
    # Relative Time column: 0.103000 s after the first frame.
    assert rows[2]["timestamp_ns"] == 103_000_000
    assert rows[1]["inter_arrival_ns"] == 412_000
    assert (rows[0]["src_port"], rows[0]["dst_port"], rows[0]["tcp_flags"]) == (40000, 443, 0x02)
    assert rows[1]["tcp_flags"] == 0x12


def test_markup_in_dns_name_decodes_as_dns(cases_dir):
    rows, _ = decode(cases_dir / "markup-in-fields.pcap")
    assert len(rows) == 1
    assert rows[0]["protocol"] == "DNS"
    assert rows[0]["dst_port"] == 53


@pytest.mark.parametrize("batch_frames", [1, 2, 3])
def test_batch_size_does_not_change_rows(cases_dir, batch_frames):
    path = cases_dir / "timestamps-backwards.pcap"
    whole, _ = decode_to_table(path, capture_id="case")
    decoder = CaptureDecoder(path, capture_id="case", batch_frames=batch_frames)
    batches = list(decoder.batches())
    assert all(batch.num_rows <= batch_frames for batch in batches)
    assert pa.Table.from_batches(batches).equals(whole)
