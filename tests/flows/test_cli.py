"""The ``netae`` command line as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

# A wide terminal keeps typer from wrapping long paths inside its error box.
WIDE = {**os.environ, "COLUMNS": "400"}
# Prefect's console log lines start with the time. Prefect also logs, at exit, that it stops its temporary server.
PREFECT_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d+ \| ")


def _last_own_line(stderr: str) -> str:
    """Return the command's last line on stderr that is not a Prefect log line."""
    return [line for line in stderr.strip().splitlines() if not PREFECT_LOG_LINE.match(line)][-1]


def test_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "flows.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("retrain", "demo", "ingest"):
        assert command in result.stdout


def test_ingest_rejects_missing_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(tmp_path / "absent.pcap"), "--storage-url", f"file://{tmp_path / 'd'}"],
        capture_output=True, text=True, timeout=120, env=WIDE,
    )
    assert result.returncode != 0
    assert "absent.pcap is not a file" in result.stdout + result.stderr


def test_ingest_uploads_capture_and_labels(tmp_path):
    capture = tmp_path / "monday.pcapng"
    capture.write_bytes(b"\x0a\x0d\x0d\x0a")
    labels = tmp_path / "monday.labels.csv"
    labels.write_text("first_frame,last_frame,label,attack\n")
    store_dir = tmp_path / "d"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(capture), str(labels), "--storage-url", f"file://{store_dir}"],
        capture_output=True, text=True, timeout=120, env=WIDE,
    )
    assert result.returncode == 0, result.stderr
    assert (store_dir / "captures" / "monday.pcapng").read_bytes() == b"\x0a\x0d\x0d\x0a"
    assert (store_dir / "captures" / "monday.labels.csv").is_file()


def test_every_command_help_renders():
    for command in ("retrain", "ingest", "demo", "score", "serve", "up", "down", "mix"):
        result = subprocess.run(
            [sys.executable, "-m", "flows.cli", command, "--help"], capture_output=True, text=True, timeout=120, env=WIDE
        )
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert "Usage" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NETAE_WINDOW_MODE", "hosts", "window_mode (NETAE_WINDOW_MODE) = 'hosts': Input should be 'capture' or 'host'"),
        ("NETAE_STORAGE_URL", "ftp://127.0.0.1/x", "storage_url (NETAE_STORAGE_URL) = 'ftp://127.0.0.1/x': unsupported storage scheme 'ftp'"),
        ("NETAE_TRAINING_WINDOW_STRIDE", "99", "invalid training_window_stride (99)"),
    ],
)
def test_invalid_setting_exits_with_one_line(tmp_path, variable, value, expected):
    env = {**WIDE, "NETAE_STORAGE_URL": f"file://{tmp_path / 'd'}", variable: value}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "retrain"], capture_output=True, text=True, timeout=120,
                            env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert f"error: invalid settings: {expected}" in result.stderr
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_invalid_secret_setting_hides_value():
    # A list is not a valid S3 key, so validation rejects it. The value must not reach the terminal.
    from flows.cli import _describe_problem
    from flows.settings import NetaeSettings
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        NetaeSettings(s3_secret_key=["do-not-print-this"])
    message = _describe_problem(NetaeSettings, caught.value.errors()[0])
    assert message.startswith("s3_secret_key (NETAE_S3_SECRET_KEY)")
    assert "do-not-print-this" not in message


@pytest.mark.slow
def test_second_demo_run_skips(tmp_path):
    url = f"file://{tmp_path / 'store'}"
    command = [sys.executable, "-m", "flows.cli", "demo", "--storage-url", url, "--epochs", "1"]
    env = {**WIDE, "NETAE_SPARK_MASTER": "local[2]"}
    first = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "conv1d:" in first.stdout
    assert re.search(r"^conv1d false alarms: promised 0\.100 \(mean_k_std\), same period \d\.\d{3} of \d+ windows", first.stdout, re.M)

    second = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)

    assert second.returncode == 0, second.stderr[-3000:]
    assert "skipped: no new or changed capture" in second.stdout
    assert f"already trained on in {url}" in second.stdout
    assert "pass another --storage-url" in second.stdout


def test_score_without_champion_error_line(tmp_path):
    capture = tmp_path / "one.pcap"
    capture.write_bytes(b"not read: the champions are missing first")
    command = [sys.executable, "-m", "flows.cli", "score", str(capture), "--storage-url", f"file://{tmp_path / 'empty'}"]

    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=WIDE, cwd=tmp_path)

    assert result.returncode == 1
    assert re.fullmatch(r"error: no lstm champion at file://.*/empty/models/lstm/champion\.json: run `netae retrain` "
                        r"\(or `netae demo`\) first so that there are models to score with", _last_own_line(result.stderr))
    assert "Traceback" not in result.stdout


def test_retrain_no_decodable_capture_error_line(tmp_path):
    store = tmp_path / "d"
    (store / "captures").mkdir(parents=True)
    (store / "captures" / "notes.pcap").write_text("meeting notes, saved with the wrong extension\n")
    command = [sys.executable, "-m", "flows.cli", "retrain", "--storage-url", f"file://{store}"]

    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=WIDE, cwd=tmp_path)

    assert result.returncode == 1
    assert re.fullmatch(r"error: no capture could be decoded under 'captures/' \(captures/notes\.pcap, byte offset 0: .+\); "
                        r"set aside in file://.*/runs/ledger\.json, so later runs skip them until they are stored again",
                        _last_own_line(result.stderr))
    assert not (store / "models").exists()
