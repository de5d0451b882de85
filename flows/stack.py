"""The local stack behind ``netae up`` and ``netae down``: a Prefect server with its UI.

``start_server`` runs ``prefect server start`` as a background process in its own
session, records its process id in ``<state dir>/prefect-server.pid`` (with
host, port and log file in ``prefect-server.json``), and waits until
``/api/health`` returns true. ``stop_server`` stops exactly that process, by the
recorded id.

``netae serve`` records its own process id in ``<state dir>/serve.pid`` while it
runs, and ``stop_serving`` stops it with SIGTERM. ``netae down`` calls it before
stopping the server, because a serving process whose server is gone hangs on
shutdown. SIGTERM also reaches a serving process started as a background job of
a non-interactive shell, which ignores SIGINT.

The state folder is ``NETAE_STATE_DIR`` (default ``.netae`` in the working
folder). The server keeps its SQLite database in ``<state dir>/prefect``, the
same ``PREFECT_HOME`` that netae's embedded local API uses, so runs made
without a server appear in the UI too.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from flows.environment import DEFAULT_STATE_DIR

logger = logging.getLogger(__name__)

SERVER_PID_NAME = "prefect-server.pid"
SERVER_INFO_NAME = "prefect-server.json"
SERVER_LOG_NAME = "prefect-server.log"
SERVE_PID_NAME = "serve.pid"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class StackError(RuntimeError):
    """Starting or stopping a process of the local stack failed."""


@dataclass(frozen=True)
class ServerInfo:
    """A Prefect server that ``start_server`` started.

    Attributes:
        pid: process id of ``prefect server start``.
        host: address the server listens on.
        port: TCP port the server listens on.
        log_path: file that receives the server's output.
        start_ticks: the process's start time in clock ticks since boot, from
            ``/proc/<pid>/stat``. It distinguishes the recorded process from a
            later one that reuses its id. None where ``/proc`` is absent.
    """

    pid: int
    host: str
    port: int
    log_path: str
    start_ticks: int | None = None

    @property
    def url(self) -> str:
        """Address of the UI."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Value for ``PREFECT_API_URL``."""
        return f"{self.url}/api"


def state_dir() -> Path:
    """Return the state folder: ``NETAE_STATE_DIR``, or ``.netae`` in the working folder."""
    return Path(os.environ.get("NETAE_STATE_DIR", DEFAULT_STATE_DIR)).resolve()


def _process_start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in brackets and may hold spaces:
    # state is field 3 and starttime field 22 of proc(5).
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] == "Z"


def _is_running(pid: int, start_ticks: int | None = None) -> bool:
    """Return whether ``pid`` is alive and, when ``start_ticks`` is given, the same process."""
    try:
        # Reap the process if it is this process's own finished child.
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True

    if _is_zombie(pid):
        return False
    return start_ticks is None or _process_start_ticks(pid) == start_ticks


def _terminate(pid: int, start_ticks: int | None, process_name: str, timeout_s: float) -> None:
    """Send SIGTERM to ``pid``, wait up to ``timeout_s``, then SIGKILL."""
    logger.info("Stopping %s (pid %d)", process_name, pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _is_running(pid, start_ticks):
            logger.info("Stopped %s (pid %d)", process_name, pid)
            return
        time.sleep(0.2)

    logger.warning("%s (pid %d) did not stop within %.0f s of SIGTERM; sending SIGKILL", process_name, pid, timeout_s)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _is_running(pid, start_ticks):
        time.sleep(0.1)


def server_is_healthy(api_url: str, timeout_s: float = 2.0) -> bool:
    """Return whether ``GET <api_url>/health`` returns true within ``timeout_s`` seconds."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout_s) as response:
            return response.status == 200 and response.read().strip() == b"true"
    except (urllib.error.URLError, OSError):
        return False


def read_server(state: Path) -> ServerInfo | None:
    """Return the server recorded in ``state``, or None when none is recorded."""
    info_path = state / SERVER_INFO_NAME
    if not info_path.is_file():
        return None
    return ServerInfo(**json.loads(info_path.read_text()))


def _forget_server(state: Path) -> None:
    for name in (SERVER_PID_NAME, SERVER_INFO_NAME):
        (state / name).unlink(missing_ok=True)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StackError(
                f"cannot start the Prefect server: {host}:{port} is already in use ({error}); "
                "stop what listens there or pass another port with --port"
            ) from None


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log output)"


def start_server(
    state: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> ServerInfo:
    """Start a Prefect server with its UI in the background and wait until it is healthy.

    Args:
        state: the state folder for the pid file, the server log and
            ``PREFECT_HOME`` (``<state>/prefect``).
        host: address to listen on; keep 127.0.0.1 unless the UI must be
            reachable from other machines.
        port: TCP port to listen on.
        startup_timeout_s: seconds to wait for ``/api/health``; a fresh database
            on a 2-core machine takes 5 to 20 s.

    Returns:
        The started server.

    Raises:
        StackError: when a server recorded in ``state`` still runs, the port is
            taken, or the server exits or stays unhealthy past the timeout (the
            message carries the end of its log).
    """
    state.mkdir(parents=True, exist_ok=True)
    recorded = read_server(state)
    if recorded is not None and _is_running(recorded.pid, recorded.start_ticks):
        raise StackError(
            f"a Prefect server started by netae already runs at {recorded.url} (pid {recorded.pid}); "
            "stop it with `netae down` first"
        )
    if recorded is not None:
        logger.warning("Removing the records of a Prefect server (pid %d) that no longer runs", recorded.pid)
        _forget_server(state)
    _check_port_free(host, port)

    log_path = state / SERVER_LOG_NAME
    env = {
        **os.environ,
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(state / "prefect")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
    }
    # PREFECT_API_URL configures clients. An inherited one may name another server.
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
    info = ServerInfo(
        pid=process.pid, host=host, port=port, log_path=str(log_path), start_ticks=_process_start_ticks(process.pid)
    )
    (state / SERVER_PID_NAME).write_text(f"{process.pid}\n")
    (state / SERVER_INFO_NAME).write_text(json.dumps(asdict(info), indent=2))
    logger.info("Started the Prefect server (pid %d), waiting for %s/health", process.pid, info.api_url)

    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _forget_server(state)
            raise StackError(
                f"the Prefect server exited with status {process.returncode} before it was healthy; "
                f"end of {log_path}:\n{_log_tail(log_path)}"
            )
        if server_is_healthy(info.api_url):
            logger.info("The Prefect server is healthy at %s", info.url)
            return info
        time.sleep(0.5)

    _terminate(info.pid, info.start_ticks, "the Prefect server", STOP_TIMEOUT_S)
    _forget_server(state)
    raise StackError(
        f"the Prefect server was not healthy at {info.api_url}/health within {startup_timeout_s:.0f} s and was "
        f"stopped; end of {log_path}:\n{_log_tail(log_path)}"
    )


def stop_server(state: Path, *, timeout_s: float = STOP_TIMEOUT_S) -> ServerInfo | None:
    """Stop the Prefect server that ``start_server`` recorded in ``state``.

    Only the recorded process is signalled, and only while its start time
    matches the record, so a process id the system has since given to another
    program is left alone.

    Returns:
        The server that was recorded (stopped now, or already gone), or None
        when ``state`` records no server.
    """
    recorded = read_server(state)
    if recorded is None:
        return None
    if _is_running(recorded.pid, recorded.start_ticks):
        _terminate(recorded.pid, recorded.start_ticks, "the Prefect server", timeout_s)
    else:
        logger.info("The Prefect server (pid %d) had already stopped", recorded.pid)
    _forget_server(state)
    return recorded


def record_serving(state: Path) -> Path:
    """Record this process as the serving process; returns the pid file to remove at exit."""
    state.mkdir(parents=True, exist_ok=True)
    pid_path = state / SERVE_PID_NAME
    ticks = _process_start_ticks(os.getpid())
    pid_path.write_text(json.dumps({"pid": os.getpid(), "start_ticks": ticks}))
    return pid_path


def stop_serving(state: Path, *, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """Stop the ``netae serve`` process recorded in ``state``.

    Returns:
        Its process id, or None when no serving process is recorded.
    """
    pid_path = state / SERVE_PID_NAME
    if not pid_path.is_file():
        return None
    record = json.loads(pid_path.read_text())
    pid, ticks = int(record["pid"]), record.get("start_ticks")
    if _is_running(pid, ticks):
        _terminate(pid, ticks, "the serving process", timeout_s)
    else:
        logger.info("The serving process (pid %d) had already stopped", pid)
    pid_path.unlink(missing_ok=True)
    return pid
