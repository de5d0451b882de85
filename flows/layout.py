"""Where each artifact lives in the object store.

    captures/...                                  captures and their .labels.csv files
    lake/packets/capture_id=<id>/                 the packet table, one partition per capture
    lake/windows/run_id=<run>/                    windows of one run
    models/<kind>/<run>/                          one model version (manifest.json written last)
    models/<kind>/champion.json                   pointer to the version that scores ad hoc runs
    reports/<run>/report.html                     the run's HTML report
    validations/<run>/<suite>.json                Great Expectations results (packets, windows, drift)
    validations/<run>/data_docs/index.html        Data Docs of those results
    runs/<run>/manifest.json                      what the run consumed, set aside and published

A model version is complete only once its ``manifest.json`` exists. The champion
pointer is written after it, so a reader following the pointer never finds half
a model.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

PACKETS_PREFIX = "lake/packets/"
CALIBRATION_FILE = "calibration.parquet"
"""Metadata and score of each window a model's threshold was calibrated on, in its model folder."""
MODEL_FILES = ("model.keras", "preprocessing.json", "threshold.json", CALIBRATION_FILE, "history.json", "metrics.json",
               "fingerprint.json")


def new_run_id(now: datetime | None = None) -> str:
    """Return a sortable, unique run id such as ``20261204T201500Z-3fa2c1``."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def windows_prefix(run_id: str) -> str:
    """Return the key prefix of a run's windows."""
    return f"lake/windows/run_id={run_id}/"


def model_prefix(kind: str, version: str) -> str:
    """Return the key prefix of one model version."""
    return f"models/{kind}/{version}/"


def champion_key(kind: str) -> str:
    """Return the key of a model kind's champion pointer."""
    return f"models/{kind}/champion.json"


def report_key(run_id: str) -> str:
    """Return the key of a run's HTML report."""
    return f"reports/{run_id}/report.html"


def validations_prefix(run_id: str) -> str:
    """Return the key prefix of a run's validation results and Data Docs."""
    return f"validations/{run_id}/"


def validation_key(run_id: str, suite: str) -> str:
    """Return the key of a run's validation result for ``suite``."""
    return f"{validations_prefix(run_id)}{suite}.json"


def data_docs_prefix(run_id: str) -> str:
    """Return the key prefix of a run's Data Docs."""
    return f"{validations_prefix(run_id)}data_docs/"


def data_docs_index_key(run_id: str) -> str:
    """Return the key of a run's Data Docs index page."""
    return f"{data_docs_prefix(run_id)}index.html"


def run_manifest_key(run_id: str) -> str:
    """Return the key of a run's manifest."""
    return f"runs/{run_id}/manifest.json"
