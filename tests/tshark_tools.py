"""tshark helpers shared by tests that check netae's output against Wireshark."""

from __future__ import annotations

import shutil
import subprocess

import pytest

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (Debian package tshark)")


def tshark_fields(path, *fields: str, display: str | None = None) -> list[list[str]]:
    """Return one list of field values per frame that tshark prints for ``path``."""
    command = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=/t"]
    if display is not None:
        command += ["-Y", display]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return [line.split("\t") for line in result.stdout.splitlines()]
