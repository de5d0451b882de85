"""Fixture names the decoder tests use for the shared data folders.

Both delegate to the one pair of fixtures in ``tests/conftest.py``, which skip
with a reason where ``../shared`` is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cases_dir(shared_cases: Path) -> Path:
    """``../shared/cases``: small damaged or unusual captures with expected values."""
    return shared_cases.resolve()


@pytest.fixture(scope="session")
def captures_dir(shared_captures: Path) -> Path:
    """``../shared/captures``: real public captures."""
    return shared_captures.resolve()
