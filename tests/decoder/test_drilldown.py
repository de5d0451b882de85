"""Info-column drill-down through pyshark: results, argument checks, and cleanup."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

import pytest

from spark_jobs.decoder.drilldown import wireshark_info

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tshark_children() -> list[int]:
    """Process ids of tshark processes whose parent is this test process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path("/proc", entry, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Name", "").strip() == "tshark" and fields.get("PPid", "").strip() == str(os.getpid()):
            found.append(int(entry))
    return found


def test_info_for_chosen_frames(cases_dir):
    info = wireshark_info(cases_dir / "two-link-types.pcapng", [3, 1])
    assert sorted(info) == [1, 3]
    assert info[1] == "40000 → 443 [SYN] Seq=0 Win=64240 Len=0"
    assert info[3].startswith("40001 → 443 [SYN]")


def test_missing_frames_are_absent(cases_dir):
    info = wireshark_info(cases_dir / "single-packet.pcap", [1, 99])
    assert list(info) == [1]


def test_usable_inside_running_event_loop(cases_dir):
    async def look_up() -> dict[int, str]:
        return wireshark_info(cases_dir / "two-link-types.pcapng", [2])

    info = asyncio.run(look_up())
    assert "Standard query" in info[2]


def test_two_hundred_frames_leave_no_process_or_descriptor(captures_dir):
    path = captures_dir / "attack-arp-scan.pcap"
    descriptors_before = _open_descriptors()
    looked_up = 0
    for first in range(1, 201, 10):
        info = wireshark_info(path, list(range(first, first + 10)))
        looked_up += len(info)
    assert looked_up == 200
    assert _tshark_children() == []
    assert _open_descriptors() == descriptors_before


def test_path_starting_with_dash_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-r.pcap").write_bytes(b"")
    with pytest.raises(ValueError, match="starts with '-', which tshark would read as an option"):
        wireshark_info("-r.pcap", [1])


def test_relative_path_is_made_absolute(cases_dir, monkeypatch):
    monkeypatch.chdir(cases_dir)
    assert list(wireshark_info("single-packet.pcap", [1])) == [1]


@pytest.mark.parametrize("frames", [[], [0], [1, -3], [True], ["1"]])
def test_invalid_frame_numbers_rejected(cases_dir, frames):
    with pytest.raises(ValueError, match="frame_numbers must"):
        wireshark_info(cases_dir / "single-packet.pcap", frames)


def test_missing_capture_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="capture file not found"):
        wireshark_info(tmp_path / "absent.pcap", [1])


def test_not_a_capture_leaves_no_process(cases_dir):
    with pytest.raises(RuntimeError, match="tshark failed to read"):
        wireshark_info(cases_dir / "not-a-capture.pcap", [1])

    assert _tshark_children() == []


def test_cut_short_capture_keeps_frames(cases_dir):
    # The file contains two complete frames and part of a third.
    info = wireshark_info(cases_dir / "truncated-last-record.pcap", [1, 2, 3])

    assert sorted(info) == [1, 2]


def test_fifty_frames_all_returned(captures_dir):
    # pyshark 0.6's own summary parser returns only the first of these.
    info = wireshark_info(captures_dir / "attack-arp-scan.pcap", list(range(1, 51)))

    assert sorted(info) == list(range(1, 51))
    assert all(text for text in info.values())


def test_lookups_leave_asyncio_no_unknown_child(captures_dir, caplog):
    # Killing tshark before asyncio's child watcher reaps it makes the watcher
    # log "Unknown child process", so the drill-down waits for tshark first.
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        for _ in range(20):
            wireshark_info(captures_dir / "attack-arp-scan.pcap", [1, 2, 3])

    assert [record.getMessage() for record in caplog.records if "Unknown child" in record.getMessage()] == []
