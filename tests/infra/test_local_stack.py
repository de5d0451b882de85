"""The process bookkeeping of ``netae up``, ``netae serve`` and ``netae down``.

Background processes of this test stand in for a recorded server or serving
process, so each case takes about a second. The served-deployments test in
tests/flows starts a real server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import pytest

from flows.stack import (
    SERVE_PID_NAME,
    SERVER_INFO_NAME,
    SERVER_PID_NAME,
    ServerInfo,
    StackError,
    _is_running,
    _process_start_ticks,
    read_server,
    start_server,
    stop_server,
    stop_serving,
)


@pytest.fixture()
def sleeper() -> int:
    """Start a sleeping process outside this one's children, like a server left by ``netae up``; yield its pid.

    The process is killed at teardown if still alive.
    """
    launcher = subprocess.run(
        ["sh", "-c", f"'{sys.executable}' -c 'import time; time.sleep(300)' >/dev/null 2>&1 & echo $!"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    pid = int(launcher.stdout.strip())
    yield pid
    if _is_running(pid):
        os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_running(pid):
            return True
        time.sleep(0.1)
    return False


def _record_server(state, pid: int, start_ticks: int | None, port: int = 4200) -> ServerInfo:
    state.mkdir(parents=True, exist_ok=True)
    info = ServerInfo(pid=pid, host="127.0.0.1", port=port, log_path=str(state / "server.log"), start_ticks=start_ticks)
    (state / SERVER_PID_NAME).write_text(f"{pid}\n")
    (state / SERVER_INFO_NAME).write_text(json.dumps(asdict(info)))
    return info


def test_stop_without_record_returns_none(tmp_path):
    assert stop_server(tmp_path) is None
    assert stop_serving(tmp_path) is None


def test_stop_server_terminates_recorded_process(tmp_path, sleeper):
    recorded = _record_server(tmp_path, sleeper, _process_start_ticks(sleeper))

    stopped = stop_server(tmp_path, timeout_s=10)

    assert stopped == recorded
    assert _wait_gone(sleeper)
    assert read_server(tmp_path) is None
    assert not (tmp_path / SERVER_PID_NAME).exists()


def test_stop_server_spares_recycled_pid(tmp_path, sleeper):
    _record_server(tmp_path, sleeper, _process_start_ticks(sleeper) - 1)

    stop_server(tmp_path, timeout_s=10)

    assert _is_running(sleeper)
    assert read_server(tmp_path) is None


def test_stop_server_forgets_exited_process(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = _process_start_ticks(finished.pid)
    finished.wait(timeout=30)
    recorded = _record_server(tmp_path, finished.pid, ticks)

    assert stop_server(tmp_path) == recorded
    assert read_server(tmp_path) is None


def test_stop_serving_terminates_recorded_process(tmp_path, sleeper):
    record = {"pid": sleeper, "start_ticks": _process_start_ticks(sleeper)}
    (tmp_path / SERVE_PID_NAME).write_text(json.dumps(record))

    assert stop_serving(tmp_path, timeout_s=10) == sleeper
    assert _wait_gone(sleeper)
    assert not (tmp_path / SERVE_PID_NAME).exists()


def test_start_fails_while_recorded_server_runs(tmp_path, sleeper):
    _record_server(tmp_path, sleeper, _process_start_ticks(sleeper), port=4311)

    with pytest.raises(StackError, match=rf"already runs at http://127.0.0.1:4311 \(pid {sleeper}\).*netae down"):
        start_server(tmp_path, port=4311)

    assert _is_running(sleeper)


def test_start_fails_on_port_in_use(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(StackError, match=rf"127.0.0.1:{port} is already in use.*--port"):
            start_server(tmp_path, port=port)

    assert read_server(tmp_path) is None
