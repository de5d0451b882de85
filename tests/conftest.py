"""Fixtures shared by every test: the shared data folders, Spark, an S3 server, Prefect state."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# Prefect, TensorFlow and Spark read these when they load, so they are set before
# any test module imports them. Prefect's local API keeps its SQLite database in a
# folder of this test session only.
_STATE_DIR = Path(tempfile.mkdtemp(prefix="netae-tests-"))
os.environ["NETAE_STATE_DIR"] = str(_STATE_DIR)
os.environ.setdefault("PREFECT_HOME", str(_STATE_DIR / "prefect"))
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

from flows.environment import apply_defaults  # noqa: E402
from tests.ports import free_port  # noqa: E402

apply_defaults(_STATE_DIR)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"


def _shared_folder(name: str) -> Path:
    folder = SHARED_DIR / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the shared {name} folder sits beside the repository on development machines only")
    return folder


@pytest.fixture(scope="session")
def shared_captures() -> Path:
    """The folder of real public captures, ``../shared/captures``; skips where it is absent."""
    return _shared_folder("captures")


@pytest.fixture(scope="session")
def shared_cases() -> Path:
    """The folder of small field cases, ``../shared/cases``; skips where it is absent."""
    return _shared_folder("cases")


@pytest.fixture(scope="session")
def demo_sample() -> Path:
    """The project's own labelled demo capture folder."""
    folder = REPO_ROOT / "samples" / "demo"
    if not (folder / "demo.pcapng").is_file():
        pytest.fail(f"the bundled demo capture is missing from {folder}; re-record it with samples/record_demo.py")
    return folder


@pytest.fixture(scope="session")
def spark():
    """A real local Spark session with two worker threads, shared by the whole test session."""
    from spark_jobs.session import get_spark

    session = get_spark(master="local[2]", driver_memory="2g", shuffle_partitions=4)
    yield session
    session.stop()


class MotoServer:
    """moto's standalone S3 server in a child process, bound to 127.0.0.1 only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server and wait until it accepts connections (at most 30 s)."""
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto's S3 server did not start on {self.endpoint} within 30 s")

    def stop(self) -> None:
        """Stop the server process that ``start`` launched."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def s3_server():
    """A running moto S3 server on 127.0.0.1; yields the ``MotoServer``."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def s3_settings_env(s3_server, monkeypatch):
    """NETAE_* variables that point netae at a fresh bucket on the test S3 server."""
    bucket = f"netae-{os.urandom(4).hex()}"
    monkeypatch.setenv("NETAE_STORAGE_URL", f"s3://{bucket}")
    monkeypatch.setenv("NETAE_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("NETAE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("NETAE_S3_SECRET_KEY", "testing")
    return bucket


def pytest_sessionfinish(session, exitstatus):
    """Stop Prefect's temporary API servers while pytest's output streams are still open, then remove the state folder.

    Flow runs without ``PREFECT_API_URL`` start a temporary server that Prefect
    stops at interpreter exit. By then pytest has closed the streams its log
    handler writes to, so the shutdown line ends in a "Logging error" traceback.
    """
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer

    # Run logs still queued go to the server before it stops.
    APILogWorker.drain_all(timeout=10)
    # NOTE: ``_instances`` is Prefect's private registry of these servers (Prefect 3.x).
    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()

    # With the servers stopped, nothing uses this session's state folder any more.
    shutil.rmtree(_STATE_DIR, ignore_errors=True)
