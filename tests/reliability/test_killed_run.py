"""A nightly run killed with SIGKILL while it trains leaves nothing that passes for a finished model.

The run is ``netae retrain`` in a child process, killed by its pid as soon as
its log shows an LSTM training epoch. A first night has already published
champions, which must stay byte for byte. The next run must resume the capture
that the killed run decoded, and publish.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows import layout
from flows.ledger import LEDGER_KEY
from flows.retrain import retrain
from flows.settings import NetaeSettings
from tests.reliability.child_env import netae_child_env

pytestmark = pytest.mark.slow

EPOCH_LINE = re.compile(r"lstm epoch \d+/\d+")
TRAINING_WAIT_S = 600
KINDS = ("lstm", "conv1d")
SMALL_MODELS = dict(lstm_units=8, conv_filters=8, window_length=16, window_stride=8, batch_size=128)


def _run_and_kill_during_training(storage_url: str, state_dir: Path) -> tuple[list[str], str]:
    """Start ``netae retrain`` in a child process, SIGKILL it at its first LSTM epoch; return its output and the line seen."""
    # Enough epochs that training is still going when the kill lands.
    env = netae_child_env(storage_url, state_dir, SMALL_MODELS, epochs="200", early_stopping_patience="1000")
    netae = Path(sys.executable).parent / "netae"
    child = subprocess.Popen(
        [str(netae), "retrain"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, text=True, errors="replace", start_new_session=True,
    )
    lines: list[str] = []
    seen = threading.Event()
    epoch_line: list[str] = []

    def read_output() -> None:
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if not seen.is_set() and EPOCH_LINE.search(line):
                epoch_line.append(line.strip())
                seen.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TRAINING_WAIT_S
        while not seen.wait(timeout=1.0):
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"netae retrain ended or stalled before an LSTM epoch (exit {child.poll()}):\n" + "\n".join(lines[-40:]))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        # The child's own children (Spark's JVM, Prefect's local API) share its
        # session; stop whatever of that group outlived the kill.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reader.join(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return lines, epoch_line[0]


def test_killed_training_leaves_champion_and_next_run_publishes(tmp_path, demo_sample):
    storage_url = f"file://{tmp_path / 'data'}"
    settings = NetaeSettings(storage_url=storage_url, spark_master="local[2]", epochs=1, **SMALL_MODELS)
    store = settings.open_store()
    # Without labels every run promotes its models, so each night's outcome is known.
    store.put_file("captures/night-1/demo.pcapng", str(demo_sample / "demo.pcapng"))
    earlier_run = retrain(settings=settings)
    pointers = {kind: store.get_bytes(layout.champion_key(kind)) for kind in KINDS}
    earlier = {info.key: info.etag for info in store.list("models/")}
    store.put_file("captures/night-2/demo.pcapng", str(demo_sample / "demo.pcapng"))

    output, epoch_line = _run_and_kill_during_training(storage_url, tmp_path / "state")

    # The kill landed during training, after decoding.
    assert EPOCH_LINE.search(epoch_line)
    assert not any("Run " in line and " complete" in line for line in output)
    entry = store.get_json(LEDGER_KEY)["captures"]["captures/night-2/demo.pcapng"]
    killed_run_id = entry["run_id"]
    assert entry["state"] == "pending"
    assert killed_run_id != earlier_run["run_id"]

    # Nothing of the killed run passes for a finished model or run.
    keys = set(store.iter_keys())
    for kind in KINDS:
        assert store.get_bytes(layout.champion_key(kind)) == pointers[kind]
        assert layout.model_prefix(kind, killed_run_id) + "manifest.json" not in keys
    assert layout.run_manifest_key(killed_run_id) not in keys
    assert {info.key: info.etag for info in store.list("models/")} == earlier
    assert not any(Path(key).name.startswith(".tmp-") for key in keys)

    # The next night resumes the capture the killed run decoded, and publishes.
    manifest = retrain(settings=settings)

    assert [item["key"] for item in manifest["captures"]] == ["captures/night-2/demo.pcapng"]
    for kind in KINDS:
        pointer = store.get_json(layout.champion_key(kind))
        assert pointer["version"] == manifest["run_id"]
        assert store.exists(layout.model_prefix(kind, manifest["run_id"]) + "manifest.json")
        assert not store.exists(layout.model_prefix(kind, killed_run_id) + "manifest.json")
    assert store.get_json(LEDGER_KEY)["captures"]["captures/night-2/demo.pcapng"]["state"] == "consumed"
