"""The ``netae`` command line as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

# A wide terminal keeps typer from wrapping long paths inside its error box.
WIDE = {**os.environ, "COLUMNS": "400"}


def test_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "flows.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("retrain", "demo", "ingest"):
        assert command in result.stdout


def test_ingest_rejects_missing_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(tmp_path / "absent.pcap"), "--storage-url", f"file://{tmp_path / 'd'}"],
        capture_output=True, text=True, timeout=120, env=WIDE,
    )
    assert result.returncode != 0
    assert "absent.pcap is not a file" in result.stdout + result.stderr


def test_ingest_uploads_capture_and_labels(tmp_path):
    capture = tmp_path / "monday.pcapng"
    capture.write_bytes(b"\x0a\x0d\x0d\x0a")
    labels = tmp_path / "monday.labels.csv"
    labels.write_text("first_frame,last_frame,label,attack\n")
    store_dir = tmp_path / "d"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(capture), str(labels), "--storage-url", f"file://{store_dir}"],
        capture_output=True, text=True, timeout=120, env=WIDE,
    )
    assert result.returncode == 0, result.stderr
    assert (store_dir / "captures" / "monday.pcapng").read_bytes() == b"\x0a\x0d\x0d\x0a"
    assert (store_dir / "captures" / "monday.labels.csv").is_file()


def test_every_command_help_renders():
    for command in ("retrain", "ingest", "demo", "score", "serve", "up", "down", "mix"):
        result = subprocess.run(
            [sys.executable, "-m", "flows.cli", command, "--help"], capture_output=True, text=True, timeout=120, env=WIDE
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert "Usage" in result.stdout
