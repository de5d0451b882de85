"""``netae up``, ``netae serve`` and ``netae down`` as an operator runs them.

A real Prefect server on 127.0.0.1 (free port, its own state folder), the
deployments served by ``netae serve`` in a child process, and flow runs
started through the server's API, the way the UI and ``prefect deployment run``
start them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitStrategy
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows import layout
from flows.deployments import RETRAIN_DEPLOYMENT, SCORE_DEPLOYMENT
from flows.stack import SERVE_PID_NAME, _is_running, read_server, server_is_healthy
from objectstore import open_store

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]

SERVE_READY_TIMEOUT_S = 300
FLOW_RUN_TIMEOUT_S = 900

TINY_RUNS = {
    "NETAE_CAPTURES_PREFIX": "captures/demo/",
    "NETAE_SPARK_MASTER": "local[2]",
    "NETAE_EPOCHS": "2",
    "NETAE_LSTM_UNITS": "8",
    "NETAE_CONV_FILTERS": "8",
    "NETAE_WINDOW_LENGTH": "16",
    "NETAE_WINDOW_STRIDE": "8",
    "NETAE_RETRAIN_CRON": "30 3 * * *",
    "NETAE_TIMEZONE": "Europe/Berlin",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _netae(args: list[str], env: dict, timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout_s,
    )


class ServedStack:
    """A Prefect server from ``netae up`` and a ``netae serve`` child process."""

    def __init__(self, root: Path, demo_sample: Path) -> None:
        self.state = root / "state"
        self.storage_url = f"file://{root / 'data'}"
        self.port = _free_port()
        self.env = {
            **os.environ,
            **TINY_RUNS,
            "NETAE_STATE_DIR": str(self.state),
            "PREFECT_HOME": str(self.state / "prefect"),
            "NETAE_STORAGE_URL": self.storage_url,
            "KERAS_HOME": str(root / "keras"),
            "COLUMNS": "400",
        }
        self.env.pop("PREFECT_API_URL", None)
        self.serve_process: subprocess.Popen | None = None
        self.up_outcome: subprocess.CompletedProcess | None = None
        self.serve_log = root / "serve.log"

        store = open_store(self.storage_url)
        for path in sorted(demo_sample.iterdir()):
            store.put_file(f"captures/demo/{path.name}", str(path))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def up(self) -> subprocess.CompletedProcess:
        return _netae(["up", "--port", str(self.port)], self.env)

    def serve(self) -> None:
        """Start ``netae serve`` without PREFECT_API_URL: it finds the server ``netae up`` recorded."""
        with open(self.serve_log, "wb") as log:
            self.serve_process = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "serve"], cwd=REPO_ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def wait_for_deployments(self, names: list[str]) -> None:
        deadline = time.monotonic() + SERVE_READY_TIMEOUT_S
        with temporary_settings({PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                assert self.serve_process.poll() is None, f"netae serve exited early:\n{self.serve_log.read_text()}"
                missing = []
                for name in names:
                    try:
                        client.read_deployment_by_name(name)
                    except ObjectNotFound:
                        missing.append(name)
                if not missing:
                    return
                time.sleep(2)
        raise AssertionError(f"deployments {names} not registered within {SERVE_READY_TIMEOUT_S} s:\n{self.serve_log.read_text()}")

    def teardown(self) -> None:
        """Stop whatever is still running, the serving process before the server, each by pid."""
        if self.serve_process is not None and self.serve_process.poll() is None:
            self.serve_process.terminate()
            self.serve_process.wait(timeout=60)
        _netae(["down"], self.env)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, demo_sample):
    served = ServedStack(tmp_path_factory.mktemp("served"), demo_sample)
    served.up_outcome = served.up()
    assert served.up_outcome.returncode == 0, served.up_outcome.stdout + served.up_outcome.stderr
    served.serve()
    yield served
    served.teardown()


def _artifact_keys(client, flow_run_id) -> set[str]:
    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {artifact.key for artifact in artifacts}


def test_up_prints_address_and_api_url(stack):
    recorded = read_server(stack.state)
    printed = stack.up_outcome.stdout.splitlines()

    assert f"export PREFECT_API_URL=http://127.0.0.1:{stack.port}/api" in printed
    assert printed[0].startswith(f"Prefect server and UI at http://127.0.0.1:{stack.port} (pid ")
    assert recorded is not None
    assert recorded.url == f"http://127.0.0.1:{stack.port}"
    assert server_is_healthy(stack.api_url)
    assert (stack.state / "prefect-server.pid").read_text().strip() == str(recorded.pid)


def test_second_up_fails_while_server_runs(stack):
    outcome = stack.up()

    assert outcome.returncode == 1
    assert f"already runs at http://127.0.0.1:{stack.port}" in outcome.stderr
    assert "netae down" in outcome.stderr


def test_serve_registers_schedule_and_limit(stack):
    stack.wait_for_deployments([f"retrain/{RETRAIN_DEPLOYMENT}", f"score/{SCORE_DEPLOYMENT}"])

    with temporary_settings({PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name(f"retrain/{RETRAIN_DEPLOYMENT}")
        adhoc = client.read_deployment_by_name(f"score/{SCORE_DEPLOYMENT}")

    assert [schedule.schedule.cron for schedule in nightly.schedules] == ["30 3 * * *"]
    assert nightly.schedules[0].schedule.timezone == "Europe/Berlin"
    assert nightly.schedules[0].active
    assert nightly.global_concurrency_limit.limit == 1
    assert nightly.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE
    assert nightly.entrypoint == "flows.retrain.retrain"
    assert adhoc.schedules == []
    assert adhoc.entrypoint == "flows.score.score"
    assert (stack.state / SERVE_PID_NAME).is_file()


def _wait_until_final(client, flow_run_id, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        flow_run = client.read_flow_run(flow_run_id)
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run
        time.sleep(3)
    raise AssertionError(f"flow run {flow_run_id} did not finish within {timeout_s} s")


def test_two_nightly_runs_queue_then_score(stack):
    stack.wait_for_deployments([f"retrain/{RETRAIN_DEPLOYMENT}", f"score/{SCORE_DEPLOYMENT}"])
    store = open_store(stack.storage_url)

    with temporary_settings({PREFECT_API_URL: stack.api_url}):
        # Both runs are due at once; the concurrency limit lets one start and queues the other.
        created = [run_deployment(f"retrain/{RETRAIN_DEPLOYMENT}", timeout=0) for _ in range(2)]
        with get_client(sync_client=True) as client:
            finished = [_wait_until_final(client, flow_run.id, FLOW_RUN_TIMEOUT_S) for flow_run in created]
            earlier, later = sorted(finished, key=lambda flow_run: flow_run.start_time)
            later_state_names = [state.name for state in client.read_flow_run_states(later.id)]
            earlier_artifacts = _artifact_keys(client, earlier.id)
            later_artifacts = _artifact_keys(client, later.id)

        scored = run_deployment(
            f"score/{SCORE_DEPLOYMENT}", parameters={"capture": "captures/demo/demo.pcapng"},
            timeout=FLOW_RUN_TIMEOUT_S, poll_interval=3,
        )
        with get_client(sync_client=True) as client:
            score_artifacts = _artifact_keys(client, scored.id)

    log = stack.serve_log.read_text()
    assert earlier.state.is_completed(), f"{earlier.state}\n{log[-4000:]}"
    assert later.state.is_completed(), f"{later.state}\n{log[-4000:]}"
    assert "AwaitingConcurrencySlot" in later_state_names
    assert later.start_time >= earlier.end_time
    # The first run consumed the demo capture, so the queued one found nothing new.
    assert "netae-retrain" in earlier_artifacts
    assert "netae-retrain" not in later_artifacts
    assert scored.state.is_completed(), f"{scored.state}\n{log[-4000:]}"
    assert {"netae-score", "netae-score-flagged"} <= score_artifacts
    champion = store.get_json(layout.champion_key("lstm"))
    assert store.exists(layout.run_manifest_key(champion["version"]))
    assert any(key.endswith("report.html") for key in store.iter_keys("reports/adhoc/"))


def test_down_stops_serving_before_server(stack):
    stack.wait_for_deployments([f"retrain/{RETRAIN_DEPLOYMENT}"])
    server = read_server(stack.state)
    serve_pid = stack.serve_process.pid

    outcome = _netae(["down"], stack.env)

    assert outcome.returncode == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines[0] == f"stopped the serving process (pid {serve_pid})"
    assert lines[1] == f"stopped the Prefect server at {server.url} (pid {server.pid})"
    assert stack.serve_process.wait(timeout=30) is not None
    assert not _is_running(server.pid, server.start_ticks)
    assert not server_is_healthy(stack.api_url)
    assert read_server(stack.state) is None
    assert not (stack.state / SERVE_PID_NAME).exists()
