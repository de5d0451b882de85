"""Fixtures of the reliability tests: a moto S3 server per test module behind a pausable proxy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.ports import free_port
from tests.reliability.tcp_proxy import PausableProxy

MOTO_START_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def moto_port():
    """Port of a moto S3 server started for one test module on 127.0.0.1; stopped by its pid afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto"},
    )
    deadline = time.monotonic() + MOTO_START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.terminate()
                process.wait(timeout=10)
                pytest.fail(f"moto's S3 server did not start on 127.0.0.1:{port} within {MOTO_START_TIMEOUT_S} s")
            time.sleep(0.2)
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_proxy(moto_port):
    """A ``PausableProxy`` in front of this test's moto server."""
    proxy = PausableProxy(moto_port)
    yield proxy
    proxy.close()
