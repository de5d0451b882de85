"""Checks of the demo capture in samples/demo against its labels file, and of its recorder.

The committed checks read ``samples/demo/demo.pcapng`` with real tshark and compare it
with ``samples/demo/demo.labels.csv``: every frame to or from the attacker address
127.0.0.66 must lie in a labelled range, and no other frame may. The recorder checks
import ``samples/record_demo.py`` for its pure labelling functions, and one test records
a short capture on ``lo`` when dumpcap is allowed to capture here.
"""

from __future__ import annotations

import csv
import importlib.util
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO_ROOT / "samples"
DEMO_CAPTURE_PATH = SAMPLES_DIR / "demo" / "demo.pcapng"
DEMO_LABELS_PATH = SAMPLES_DIR / "demo" / "demo.labels.csv"

ATTACKER_ADDRESS = "127.0.0.66"
SERVER_ADDRESS = "127.0.0.1"
DEMO_SCAN_PORTS = range(30000, 30400)
LABELS_HEADER = ["first_frame", "last_frame", "label", "attack"]
ATTACKS = {"port-scan", "connection-burst"}
MAX_CAPTURE_BYTES = 5_000_000
LINKTYPE_ETHERNET = 1

PCAPNG_SECTION_HEADER_BLOCK = 0x0A0D0D0A
PCAPNG_INTERFACE_DESCRIPTION_BLOCK = 0x00000001
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D


class Frame(NamedTuple):
    """Frame number, IPv4 addresses and TCP ports of one frame (None when absent)."""

    number: int
    ip_src: str | None
    ip_dst: str | None
    tcp_srcport: int | None
    tcp_dstport: int | None

    @property
    def involves_attacker(self) -> bool:
        return ATTACKER_ADDRESS in (self.ip_src, self.ip_dst)

    @property
    def server_port(self) -> int | None:
        """TCP port on the server side (127.0.0.1) of the frame."""
        return self.tcp_dstport if self.ip_dst == SERVER_ADDRESS else self.tcp_srcport


class LabelRow(NamedTuple):
    first_frame: int
    last_frame: int
    label: str
    attack: str


# --------------------------------------------------------------------------- helpers


def read_frames_with_tshark(tshark: str, capture_path: Path) -> list[Frame]:
    command = [tshark, "-n", "-r", str(capture_path), "-T", "fields", "-E", "separator=\t",
               "-e", "frame.number", "-e", "ip.src", "-e", "ip.dst",
               "-e", "tcp.srcport", "-e", "tcp.dstport"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    frames = []
    for line in result.stdout.splitlines():
        number, ip_src, ip_dst, srcport, dstport = line.split("\t")
        frames.append(Frame(int(number), ip_src or None, ip_dst or None,
                            int(srcport) if srcport else None, int(dstport) if dstport else None))
    return frames


def read_label_rows(labels_path: Path) -> tuple[list[str], list[LabelRow]]:
    with labels_path.open(newline="", encoding="ascii") as labels_file:
        reader = csv.reader(labels_file)
        header = next(reader)
        rows = [LabelRow(int(first), int(last), label, attack) for first, last, label, attack in reader]
    return header, rows


def labelled_frame_numbers(rows: list[LabelRow]) -> dict[int, str]:
    """Map every labelled frame number to the attack of its row."""
    attacks_by_frame = {}
    for row in rows:
        for number in range(row.first_frame, row.last_frame + 1):
            attacks_by_frame[number] = row.attack
    return attacks_by_frame


def read_pcapng_link_types(capture_path: Path) -> tuple[int, list[int]]:
    """Return the first block type and the link type of every interface description block."""
    data = capture_path.read_bytes()
    (first_block_type,) = struct.unpack_from("<I", data, 0)
    link_types = []
    offset = 0
    byte_order = "<"
    while offset + 12 <= len(data):
        (block_type,) = struct.unpack_from(byte_order + "I", data, offset)
        if block_type == PCAPNG_SECTION_HEADER_BLOCK:
            # The byte-order magic at offset 8 of each section header sets the section's order.
            (magic,) = struct.unpack_from("<I", data, offset + 8)
            byte_order = "<" if magic == PCAPNG_BYTE_ORDER_MAGIC else ">"
        block_type, block_length = struct.unpack_from(byte_order + "II", data, offset)
        if block_type == PCAPNG_INTERFACE_DESCRIPTION_BLOCK:
            (link_type,) = struct.unpack_from(byte_order + "H", data, offset + 8)
            link_types.append(link_type)
        if block_length < 12:
            raise ValueError(f"{capture_path}: invalid pcapng block length {block_length} at offset {offset}")
        offset += block_length
    return first_block_type, link_types


def load_record_demo() -> ModuleType:
    """Import samples/record_demo.py, which is a script and not part of a package."""
    spec = importlib.util.spec_from_file_location("record_demo", SAMPLES_DIR / "record_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed (Debian package tshark); the demo checks decode with it")
    return path


@pytest.fixture(scope="module")
def demo_frames(tshark: str) -> list[Frame]:
    if not DEMO_CAPTURE_PATH.exists():
        pytest.fail(f"{DEMO_CAPTURE_PATH} is missing; record it with samples/record_demo.py")
    return read_frames_with_tshark(tshark, DEMO_CAPTURE_PATH)


@pytest.fixture(scope="module")
def demo_labels() -> tuple[list[str], list[LabelRow]]:
    if not DEMO_LABELS_PATH.exists():
        pytest.fail(f"{DEMO_LABELS_PATH} is missing; record it with samples/record_demo.py")
    return read_label_rows(DEMO_LABELS_PATH)


@pytest.fixture(scope="module")
def record_demo() -> ModuleType:
    return load_record_demo()


# --------------------------------------------------------------------------- shared checks


def check_label_rows_well_formed(header: list[str], rows: list[LabelRow], frame_count: int) -> None:
    assert header == LABELS_HEADER
    assert rows, "the labels file has no rows"
    for row in rows:
        assert row.label == "anomaly", row
        assert row.attack in ATTACKS, row
        assert 1 <= row.first_frame <= row.last_frame <= frame_count, row

    for previous, current in zip(rows, rows[1:]):
        assert previous.last_frame < current.first_frame, (
            f"rows overlap or are unsorted: {previous}, {current}")
        if previous.last_frame + 1 == current.first_frame:
            assert previous.attack != current.attack, (
                f"adjacent rows of one attack are not merged: {previous}, {current}")


def check_labels_match_attacker_frames(frames: list[Frame], rows: list[LabelRow]) -> None:
    attacks_by_frame = labelled_frame_numbers(rows)
    attacker_numbers = {frame.number for frame in frames if frame.involves_attacker}
    unlabelled_attacker = sorted(attacker_numbers - attacks_by_frame.keys())
    labelled_benign = sorted(attacks_by_frame.keys() - attacker_numbers)
    assert unlabelled_attacker == [], "frames involving 127.0.0.66 outside every labelled range"
    assert labelled_benign == [], "labelled frames that do not involve 127.0.0.66"


def check_attack_ports(frames: list[Frame], rows: list[LabelRow],
                       scan_ports: range) -> tuple[set[int], set[int]]:
    """Check the server-side ports of each attack, and return (scanned ports, burst ports)."""
    attacks_by_frame = labelled_frame_numbers(rows)
    scanned_ports: set[int] = set()
    burst_ports: set[int] = set()
    for frame in frames:
        attack = attacks_by_frame.get(frame.number)
        if attack == "port-scan":
            assert frame.server_port in scan_ports, frame
            scanned_ports.add(frame.server_port)
        elif attack == "connection-burst":
            assert frame.server_port not in scan_ports, frame
            burst_ports.add(frame.server_port)
    return scanned_ports, burst_ports


# --------------------------------------------------------------------------- committed demo


def test_demo_capture_under_5_mb() -> None:
    assert DEMO_CAPTURE_PATH.stat().st_size < MAX_CAPTURE_BYTES


def test_demo_capture_is_pcapng_ethernet() -> None:
    first_block_type, link_types = read_pcapng_link_types(DEMO_CAPTURE_PATH)
    assert first_block_type == PCAPNG_SECTION_HEADER_BLOCK
    assert link_types == [LINKTYPE_ETHERNET]


def test_demo_labels_well_formed(demo_frames: list[Frame],
                                 demo_labels: tuple[list[str], list[LabelRow]]) -> None:
    header, rows = demo_labels
    check_label_rows_well_formed(header, rows, frame_count=len(demo_frames))


def test_demo_frames_numbered_from_one(demo_frames: list[Frame]) -> None:
    assert [frame.number for frame in demo_frames] == list(range(1, len(demo_frames) + 1))


def test_demo_labels_match_attacker_frames(demo_frames: list[Frame],
                                           demo_labels: tuple[list[str], list[LabelRow]]) -> None:
    check_labels_match_attacker_frames(demo_frames, demo_labels[1])


def test_demo_attacks_use_expected_ports(demo_frames: list[Frame],
                                         demo_labels: tuple[list[str], list[LabelRow]]) -> None:
    scanned_ports, burst_ports = check_attack_ports(demo_frames, demo_labels[1], DEMO_SCAN_PORTS)
    assert scanned_ports == set(DEMO_SCAN_PORTS)
    assert len(burst_ports) == 1


def test_demo_has_normal_and_both_attacks(demo_frames: list[Frame],
                                          demo_labels: tuple[list[str], list[LabelRow]]) -> None:
    attacks_by_frame = labelled_frame_numbers(demo_labels[1])
    normal_count = len(demo_frames) - len(attacks_by_frame)
    assert normal_count > 0
    assert set(attacks_by_frame.values()) == ATTACKS


def test_demo_benign_hosts_present(demo_frames: list[Frame]) -> None:
    client_addresses = {frame.ip_src for frame in demo_frames} | {frame.ip_dst for frame in demo_frames}
    assert client_addresses == {SERVER_ADDRESS, "127.0.0.10", "127.0.0.11", "127.0.0.12", ATTACKER_ADDRESS}


# --------------------------------------------------------------------------- recorder functions


def test_label_runs_match_brute_force(record_demo: ModuleType) -> None:
    rng = random.Random(3)
    choices = [None, None, None, "port-scan", "connection-burst"]
    for _ in range(200):
        attacks = [rng.choice(choices) for _ in range(rng.randint(0, 40))]
        runs = record_demo.build_label_runs(enumerate(attacks, start=1))

        # Brute force: expand the runs back to one attack per frame.
        expanded: list[str | None] = [None] * len(attacks)
        for run in runs:
            assert run.label == "anomaly"
            for number in range(run.first_frame, run.last_frame + 1):
                assert expanded[number - 1] is None
                expanded[number - 1] = run.attack
        assert expanded == attacks

        for previous, current in zip(runs, runs[1:]):
            if previous.last_frame + 1 == current.first_frame:
                assert previous.attack != current.attack


def test_label_runs_split_where_attack_changes(record_demo: ModuleType) -> None:
    attacks = [None, "port-scan", "port-scan", "connection-burst", None, "connection-burst"]
    runs = record_demo.build_label_runs(enumerate(attacks, start=1))
    assert [tuple(run) for run in runs] == [
        (2, 3, "anomaly", "port-scan"),
        (4, 4, "anomaly", "connection-burst"),
        (6, 6, "anomaly", "connection-burst"),
    ]


def test_classify_frame_attack_by_server_port(record_demo: ModuleType) -> None:
    endpoints = record_demo.FrameEndpoints
    scan_ports = range(30000, 31000)
    scan_syn = endpoints(1, ATTACKER_ADDRESS, SERVER_ADDRESS, 40000, 30500)
    scan_rst = endpoints(2, SERVER_ADDRESS, ATTACKER_ADDRESS, 30500, 40000)
    burst_syn = endpoints(3, ATTACKER_ADDRESS, SERVER_ADDRESS, 40001, 45000)
    benign = endpoints(4, "127.0.0.10", SERVER_ADDRESS, 40002, 30500)
    assert record_demo.classify_frame_attack(scan_syn, 45000, scan_ports) == "port-scan"
    assert record_demo.classify_frame_attack(scan_rst, 45000, scan_ports) == "port-scan"
    assert record_demo.classify_frame_attack(burst_syn, 45000, scan_ports) == "connection-burst"
    assert record_demo.classify_frame_attack(benign, 45000, scan_ports) is None


def test_classify_frame_attack_rejects_unknown_port(record_demo: ModuleType) -> None:
    stray = record_demo.FrameEndpoints(17, ATTACKER_ADDRESS, SERVER_ADDRESS, 40000, 22)
    expected_message = r"^frame 17 involves the attacker 127\.0\.0\.66 but its server-side TCP port 22 "
    with pytest.raises(ValueError, match=expected_message):
        record_demo.classify_frame_attack(stray, 45000, range(30000, 31000))


def test_capture_filter_names_hosts_and_ports(record_demo: ModuleType) -> None:
    endpoints = record_demo.ServiceEndpoints(http_port=40001, dns_port=40002, echo_port=40003)
    capture_filter = record_demo.build_capture_filter(endpoints, range(30000, 31000))
    assert capture_filter == (
        "host 127.0.0.1 and (host 127.0.0.10 or host 127.0.0.11 or host 127.0.0.12 or host 127.0.0.66)"
        " and (port 40001 or port 40002 or port 40003 or portrange 30000-30999)")


def test_dns_response_answers_known_name(record_demo: ModuleType) -> None:
    query = record_demo.encode_dns_query(0x1234, "www.example.test", record_demo.DNS_TYPE_A)
    response = record_demo.encode_dns_response(query)
    query_id, flags, questions, answers, _, _ = struct.unpack_from("!HHHHHH", response)
    assert (query_id, flags, questions, answers) == (0x1234, 0x8180, 1, 1)
    assert response[12:len(query)] == query[12:]
    assert response[-6:-4] == b"\x00\x04"
    assert response[-4:-1] == bytes([192, 0, 2])


def test_dns_response_nxdomain_for_unknown_name(record_demo: ModuleType) -> None:
    query = record_demo.encode_dns_query(7, "nonexistent.example.test", record_demo.DNS_TYPE_AAAA)
    response = record_demo.encode_dns_response(query)
    assert struct.unpack_from("!HHHH", response) == (7, 0x8183, 1, 0)


def test_dns_response_drops_truncated_query(record_demo: ModuleType) -> None:
    query = record_demo.encode_dns_query(7, "www.example.test", record_demo.DNS_TYPE_A)
    assert record_demo.encode_dns_response(query[:-3]) is None


@pytest.mark.parametrize("option, value, message", [
    ("--benign-seconds", "0", "must be a number of seconds greater than 0, got '0'"),
    ("--tail-seconds", "-1", "must be a number of seconds of at least 0, got '-1'"),
    ("--scan-port-count", "6000", "--scan-port-count must be between 1 and 5000, got 6000"),
    ("--burst-connections", "0", "--burst-connections must be between 1 and 2000, got 0"),
])
def test_recorder_rejects_invalid_option(record_demo: ModuleType, capsys: pytest.CaptureFixture[str],
                                         option: str, value: str, message: str) -> None:
    with pytest.raises(SystemExit):
        record_demo.parse_arguments([option, value])
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- short real recording


@pytest.fixture(scope="module")
def dumpcap_can_capture_loopback(tmp_path_factory: pytest.TempPathFactory) -> None:
    dumpcap = shutil.which("dumpcap")
    if dumpcap is None:
        pytest.skip("dumpcap is not installed (Debian package wireshark-common)")
    probe_path = tmp_path_factory.mktemp("dumpcap-probe") / "probe.pcapng"
    command = [dumpcap, "-i", "lo", "-f", f"host {ATTACKER_ADDRESS}", "-a", "duration:1",
               "-w", str(probe_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        pytest.skip(f"dumpcap cannot capture on lo here (needs root or cap_net_raw,cap_net_admin): "
                    f"{result.stderr.strip()}")


def test_short_recording_labels_attacker_frames(record_demo: ModuleType, tshark: str,
                                                dumpcap_can_capture_loopback: None, tmp_path: Path) -> None:
    # A scan range away from the committed demo's, so a concurrent full recording stays apart.
    scan_ports = range(31500, 31540)
    burst_connections = 15
    exit_status = record_demo.main([
        "--out-dir", str(tmp_path), "--benign-seconds", "2", "--attack-seconds", "2",
        "--tail-seconds", "1", "--seed", "11", "--scan-first-port", str(scan_ports.start),
        "--scan-port-count", str(len(scan_ports)), "--burst-connections", str(burst_connections),
    ])
    assert exit_status == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["demo.labels.csv", "demo.pcapng"]

    frames = read_frames_with_tshark(tshark, tmp_path / "demo.pcapng")
    header, rows = read_label_rows(tmp_path / "demo.labels.csv")
    check_label_rows_well_formed(header, rows, frame_count=len(frames))
    check_labels_match_attacker_frames(frames, rows)
    scanned_ports, burst_ports = check_attack_ports(frames, rows, scan_ports)
    assert scanned_ports == set(scan_ports)
    assert len(burst_ports) == 1

    # The attacker closes each burst connection first, so TIME_WAIT keeps every burst
    # connection on its own source port.
    burst_port = burst_ports.pop()
    burst_source_ports = {frame.tcp_srcport for frame in frames
                          if frame.ip_src == ATTACKER_ADDRESS and frame.tcp_dstport == burst_port}
    assert len(burst_source_ports) == burst_connections
