"""Fixtures for the decoder tests: the shared field cases and public captures."""

from __future__ import annotations

from pathlib import Path

import pytest

# Relative to the repository root: the shared folders sit beside the checkout
# on development machines and are never copied into the project.
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = REPOSITORY_ROOT / ".." / "shared" / "cases"
CAPTURES_DIR = REPOSITORY_ROOT / ".." / "shared" / "captures"


def _existing_folder(folder: Path, what: str) -> Path:
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: {what} exist beside the repository on development machines only")
    return folder.resolve()


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    """``../shared/cases``: small damaged or unusual captures with expected values."""
    return _existing_folder(CASES_DIR, "the small field-case captures")


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """``../shared/captures``: real public captures."""
    return _existing_folder(CAPTURES_DIR, "the public development captures")
