"""``infra/test.sh`` checks its worker count before the set-up and the tests start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "test.sh"


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_invalid_worker_count_rejected(value):
    result = subprocess.run(
        ["bash", str(SCRIPT), "--collect-only"], env={**os.environ, "NETAE_TEST_WORKERS": value},
        capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 2
    assert f"NETAE_TEST_WORKERS must be a whole number of worker processes (0 runs the tests in one process), not '{value}'" in result.stderr
    assert "[netae setup]" not in result.stdout + result.stderr
