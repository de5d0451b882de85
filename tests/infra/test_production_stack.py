"""The cluster stack description in ``infra/production/``, checked without a Docker engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from flows.settings import NetaeSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = REPO_ROOT / "infra" / "production"

# ${NAME}, ${NAME:-default} and ${NAME:?message}, as docker compose interpolates them.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PRODUCTION / "compose.yaml").read_text())


def _interpolate(value: str, provided: dict[str, str]) -> str:
    """Resolve compose variables: ``provided`` values first, then ``:-`` defaults."""

    def replace(match: re.Match) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if name in provided:
            return provided[name]
        if op == ":-":
            return arg
        raise AssertionError(f"{name} has no default and the test provides no value")

    return _VARIABLE.sub(replace, value)


def test_compose_defines_expected_services(compose):
    assert set(compose["services"]) == {
        "postgres", "prefect-server", "minio", "spark-master", "spark-worker", "netae-serve",
    }
    assert compose["services"]["spark-worker"]["deploy"]["replicas"] == 2


def test_published_ports_bind_loopback(compose):
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]

    assert published
    for port in published:
        assert port.startswith("127.0.0.1:"), port


def test_serve_environment_names_are_settings_fields(compose):
    environment = compose["services"]["netae-serve"]["environment"]
    fields = {f"NETAE_{name.upper()}" for name in NetaeSettings.model_fields}

    netae_names = [name for name in environment if name.startswith("NETAE_")]

    assert netae_names
    assert sorted(set(netae_names) - fields) == []


def test_serve_environment_validates_as_settings(compose, monkeypatch):
    environment = compose["services"]["netae-serve"]["environment"]
    secrets = {"NETAE_S3_ACCESS_KEY": "operator-key", "NETAE_S3_SECRET_KEY": "operator-secret"}
    for name, value in environment.items():
        if name.startswith("NETAE_"):
            monkeypatch.setenv(name, _interpolate(str(value), secrets))

    settings = NetaeSettings()

    assert settings.storage_url == "s3://netae"
    assert settings.retrain_cron == "0 2 * * *"
    assert settings.timezone == "UTC"
    assert settings.s3_secure is False


def test_serve_points_at_stack_services(compose):
    services = compose["services"]
    environment = services["netae-serve"]["environment"]

    assert environment["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert "--port" in services["prefect-server"]["command"]
    assert services["prefect-server"]["command"][-1] == "4200"
    assert environment["NETAE_S3_ENDPOINT"] == "minio:9000"
    assert environment["NETAE_SPARK_MASTER"] == "spark://spark-master:7077"
    assert "--host spark-master --port 7077" in services["spark-master"]["command"][-1]
    assert "spark://spark-master:7077" in services["spark-worker"]["command"][-1]
    assert services["netae-serve"]["command"][-1].endswith("exec netae serve")


def test_required_variables_are_in_env_example(compose):
    text = (PRODUCTION / "compose.yaml").read_text()
    required = {match.group("name") for match in _VARIABLE.finditer(text) if match.group("op") == ":?"}
    example = (PRODUCTION / "production.env.example").read_text()
    listed = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}

    assert required == {"PREFECT_DB_PASSWORD", "NETAE_S3_ACCESS_KEY", "NETAE_S3_SECRET_KEY"}
    assert required <= listed


def test_dockerfile_copies_every_package():
    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (PRODUCTION / "Dockerfile").read_text()

    for pattern in packages:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}" in dockerfile, package


def test_spark_master_setting_reaches_session():
    env = {**os.environ, "NETAE_SPARK_MASTER": "local[1]", "SPARK_LOCAL_IP": "127.0.0.1"}
    script = (
        "from flows.settings import NetaeSettings\n"
        "from flows.spark import spark_for\n"
        "session = spark_for(NetaeSettings())\n"
        "print('master=' + session.sparkContext.master)\n"
        "session.stop()\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert "master=local[1]" in result.stdout.splitlines()
