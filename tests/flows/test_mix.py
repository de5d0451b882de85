"""``netae mix``: injected frames labelled exactly, output in time order, checksums valid after remapping."""

from __future__ import annotations

import ipaddress
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from flows.mixing import (
    Frame,
    auto_address_map,
    internet_checksum,
    labels_path_for,
    mix_captures,
    read_capture,
    remap_frame,
    write_pcapng,
)
from spark_jobs.decoder import decode_to_table
from spark_jobs.labels import label_frames, parse_labels

BACKGROUND = "benign-http-web-bro-org.pcap"
ATTACK = "attack-nmap-syn-scan.pcap"
BAD_CHECKSUM_FILTER = 'ip.checksum.status=="Bad" or tcp.checksum.status=="Bad" or udp.checksum.status=="Bad"'
WIDE = {**os.environ, "COLUMNS": "400"}


def _tshark_count(path, display_filter: str) -> int:
    result = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
         "-o", "udp.check_checksum:TRUE", "-Y", display_filter, "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return len(result.stdout.split())


def _mixed(shared_captures, tmp_path, remap: str):
    out = tmp_path / f"mix-{remap}.pcapng"
    result = mix_captures(shared_captures / BACKGROUND, shared_captures / ATTACK, out, offset_s=5.0, remap=remap,
                          attack_name="nmap SYN scan")
    return result, decode_to_table(str(out), capture_id="mix")[0].to_pandas()


@pytest.mark.parametrize("remap", ["auto", "none"])
def test_mix_labels_exactly_the_injected_frames(shared_captures, tmp_path, remap):
    result, table = _mixed(shared_captures, tmp_path, remap)
    attack_frames = read_capture(shared_captures / ATTACK)
    ranges = parse_labels(result.labels_path.read_text(), source=str(result.labels_path))
    labels = label_frames(table["frame_number"].to_numpy(), ranges)

    assert len(table) == len(read_capture(shared_captures / BACKGROUND)) + len(attack_frames)
    assert int(labels.sum()) == len(attack_frames)
    assert {item.attack for item in ranges} == {"nmap SYN scan"}
    # The labelled frames are the attack's frames, byte for byte once its addresses are remapped.
    mapping = {ipaddress.ip_address(old).packed: ipaddress.ip_address(new).packed for old, new in result.address_map.items()}
    expected = [remap_frame(frame, mapping)[0].data if mapping else frame.data for frame in attack_frames]
    mixed_frames = read_capture(result.capture_path)
    injected = [frame.data for frame, label in zip(mixed_frames, labels) if label]
    assert injected == expected
    assert (remap == "none") == (not mapping)


def test_mix_output_is_time_ordered_and_offset(shared_captures, tmp_path):
    result, table = _mixed(shared_captures, tmp_path, "auto")
    times = table["timestamp_ns"].to_numpy(np.int64)
    background_start = min(frame.timestamp_ns for frame in read_capture(shared_captures / BACKGROUND))
    assert np.all(np.diff(times) >= 0)
    assert result.attack_start_ns - background_start == 5_000_000_000


def test_mix_remap_uses_background_hosts(shared_captures, tmp_path):
    result, table = _mixed(shared_captures, tmp_path, "auto")
    background_hosts = set(decode_to_table(str(shared_captures / BACKGROUND), capture_id="b")[0].column("src_addr").to_pylist())
    assert set(result.address_map) == {"172.16.0.8", "64.13.134.52"}
    assert set(result.address_map.values()) <= background_hosts
    assert not {"172.16.0.8", "64.13.134.52"} & set(table["src_addr"]) & set(table["dst_addr"])


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_remapped_mix_checksums_verify_in_tshark(shared_captures, tmp_path):
    result, _table = _mixed(shared_captures, tmp_path, "auto")
    assert _tshark_count(result.capture_path, BAD_CHECKSUM_FILTER) == 0
    assert _tshark_count(result.capture_path, 'tcp.checksum.status=="Good"') == result.frames


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_flags_a_corrupted_checksum(tmp_path):
    frame = _udp_frame(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
    broken = bytearray(frame.data)
    broken[-1] ^= 0xFF  # payload changed, checksum not
    path = tmp_path / "broken.pcapng"
    write_pcapng(path, [frame, Frame(frame.timestamp_ns + 1, 1, bytes(broken), len(broken))])
    assert _tshark_count(path, BAD_CHECKSUM_FILTER) == 1


def test_internet_checksum_of_rfc1071_example():
    # RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF - 0xDDF2


def _udp_frame(source: bytes, destination: bytes) -> Frame:
    payload = b"hello"
    udp = struct.pack("!HHHH", 5353, 53, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, source, destination)
    header = header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]
    pseudo = source + destination + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + internet_checksum(pseudo + udp).to_bytes(2, "big") + udp[8:]
    ethernet = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    data = ethernet + header + udp
    return Frame(1_700_000_000_000_000_000, 1, data, len(data))


def test_remap_frame_recomputes_ip_and_udp_checksums():
    frame = _udp_frame(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
    moved, changed = remap_frame(frame, {b"\x0a\x00\x00\x01": b"\xc0\xa8\x01\x07"})
    ip = moved.data[14:34]
    udp = moved.data[34:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    assert changed
    assert ip[12:16] == b"\xc0\xa8\x01\x07"
    assert internet_checksum(ip) == 0
    assert internet_checksum(pseudo + udp) == 0


def test_auto_map_pairs_most_active_hosts():
    background = [_udp_frame(b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")] * 3 + [_udp_frame(b"\x0a\x00\x00\x03", b"\x0a\x00\x00\x01")]
    attack = [_udp_frame(b"\xac\x10\x00\x08", b"\xac\x10\x00\x09")] * 2 + [_udp_frame(b"\xac\x10\x00\x08", b"\xac\x10\x00\x0a")]
    mapping = auto_address_map(background, attack)
    assert mapping[b"\xac\x10\x00\x08"] == b"\x0a\x00\x00\x01"
    assert mapping[b"\xac\x10\x00\x09"] == b"\x0a\x00\x00\x02"


def test_labels_path_sits_beside_output(tmp_path):
    assert labels_path_for(tmp_path / "monday.pcapng") == tmp_path / "monday.labels.csv"


def test_mix_command_writes_capture_and_labels(shared_captures, tmp_path):
    out = tmp_path / "cli.pcapng"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "mix", str(shared_captures / BACKGROUND), str(shared_captures / ATTACK),
         "--offset", "2.5", "--out", str(out), "--remap", "none"],
        capture_output=True, text=True, timeout=120, env=WIDE,
    )
    assert result.returncode == 0, result.stderr
    assert "2011 injected" in result.stdout
    assert (tmp_path / "cli.labels.csv").read_text().startswith("first_frame,last_frame,label,attack\n")


def test_mix_command_rejects_unknown_remap(shared_captures, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "mix", str(shared_captures / BACKGROUND), str(shared_captures / ATTACK),
         "--offset", "1", "--out", str(tmp_path / "x.pcapng"), "--remap", "sometimes"],
        capture_output=True, text=True, timeout=120, env=WIDE,
    )
    assert result.returncode != 0
    assert "'sometimes' is neither auto, none nor an address map file" in result.stdout + result.stderr
