"""Process environment defaults that must be in place before Prefect or TensorFlow load."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_STATE_DIR = Path(".netae")


def apply_defaults(state_dir: Path | None = None) -> None:
    """Set defaults for Prefect, TensorFlow, Keras and Spark, keeping any value already set.

    * ``PREFECT_HOME`` in ``<state_dir>/prefect`` contains the SQLite database of
      Prefect's local API, so the embedded setup needs no server.
    * The local API gets 120 s to start, because a fresh database can take close
      to Prefect's 20 s default on a 2-core machine.
    * Prefect's server telemetry is off.
    * TensorFlow start-up messages are quiet and ``KERAS_HOME`` stays in
      ``<state_dir>/keras`` instead of the home folder.
    * Spark binds to 127.0.0.1 for local masters (a cluster's workers must reach
      the driver, so no address is forced there), and its Python workers run
      this interpreter, so they see the same installed packages.
    """
    state = (state_dir or Path(os.environ.get("NETAE_STATE_DIR", DEFAULT_STATE_DIR))).resolve()
    # Prefect creates its home folder without parents and warns when that fails.
    state.mkdir(parents=True, exist_ok=True)
    defaults = {
        "PREFECT_HOME": str(state / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "TF_CPP_MIN_LOG_LEVEL": "1",
        "KERAS_HOME": str(state / "keras"),
        "PYSPARK_PYTHON": sys.executable,
    }
    if os.environ.get("NETAE_SPARK_MASTER", "local").startswith("local"):
        defaults["SPARK_LOCAL_IP"] = "127.0.0.1"
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
