"""Environment for a ``netae`` command run as a child process in the reliability tests."""

from __future__ import annotations

import os
from pathlib import Path


def netae_child_env(storage_url: str, state_dir: Path, models: dict, **settings: str) -> dict[str, str]:
    """Return the environment of a child netae run with its own state folder.

    ``models`` and ``settings`` become ``NETAE_<NAME>`` variables; ``settings``
    is applied last.
    """
    return {
        **os.environ,
        "NETAE_STORAGE_URL": storage_url,
        "NETAE_STATE_DIR": str(state_dir),
        "PREFECT_HOME": str(state_dir / "prefect"),
        "KERAS_HOME": str(state_dir / "keras"),
        "NETAE_SPARK_MASTER": "local[2]",
        **{f"NETAE_{name.upper()}": str(value) for name, value in models.items()},
        **{f"NETAE_{name.upper()}": value for name, value in settings.items()},
    }
