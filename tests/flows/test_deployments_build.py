"""The deployment definitions that ``netae serve`` registers, built without a server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.schemas.objects import ConcurrencyLimitStrategy

from flows.deployments import RETRAIN_DEPLOYMENT, SCORE_DEPLOYMENT, build_deployments, retrain_deployment
from flows.settings import NetaeSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_nightly_uses_default_cron_in_utc():
    deployment = retrain_deployment(NetaeSettings())

    assert deployment.name == RETRAIN_DEPLOYMENT
    assert deployment.flow_name == "retrain"
    assert [item.schedule.cron for item in deployment.schedules] == ["0 2 * * *"]
    assert deployment.schedules[0].schedule.timezone == "UTC"


def test_nightly_follows_cron_and_timezone_settings(monkeypatch):
    monkeypatch.setenv("NETAE_RETRAIN_CRON", "15 1 * * 1-5")
    monkeypatch.setenv("NETAE_TIMEZONE", "America/New_York")

    deployment = retrain_deployment(NetaeSettings())

    assert deployment.schedules[0].schedule.cron == "15 1 * * 1-5"
    assert deployment.schedules[0].schedule.timezone == "America/New_York"


def test_nightly_allows_one_run_at_a_time():
    deployment = retrain_deployment(NetaeSettings())

    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy.ENQUEUE


def test_entrypoints_are_module_paths():
    deployments = {deployment.name: deployment for deployment in build_deployments(NetaeSettings())}

    assert deployments[RETRAIN_DEPLOYMENT].entrypoint == "flows.retrain.retrain"
    assert deployments[SCORE_DEPLOYMENT].entrypoint == "flows.score.score"
    assert deployments[SCORE_DEPLOYMENT].schedules == []


def test_invalid_cron_field_is_rejected():
    with pytest.raises(ValueError, match="Invalid cron string"):
        retrain_deployment(NetaeSettings(retrain_cron="0 25 * * *"))


def test_cron_with_wrong_field_count_is_rejected():
    with pytest.raises(ValueError, match="retrain_cron must have 5 fields"):
        NetaeSettings(retrain_cron="0 2 * *")


def test_unknown_timezone_is_rejected():
    with pytest.raises(ValueError, match="IANA time zone name .* got 'Mars/Olympus'"):
        NetaeSettings(timezone="Mars/Olympus")


def test_serve_without_server_fails(tmp_path):
    env = {**os.environ, "NETAE_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "400"}
    env.pop("PREFECT_API_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )

    assert result.returncode == 2
    assert "serving needs a Prefect server: start one with `netae up`" in result.stderr
    assert "PREFECT_API_URL" in result.stderr
