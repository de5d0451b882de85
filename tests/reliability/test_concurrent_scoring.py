"""Eight ad hoc ``score`` runs started together while a nightly run trains.

A first night publishes champions, and one ``score`` run alone gives the
reference result for a small capture. Then ``netae retrain`` starts in a child
process on a new capture. Once its flow has started, eight ``score`` runs of
the same capture start at once in threads of this process, so they share its
Spark session as runs inside one Prefect worker process do. Every run must
complete with the reference's windows, flags and scores while the nightly run
is still going. The test then stops the nightly run, to keep the test short.

The test samples the resident memory (RSS) of this process and all its
descendants (Spark's JVM, the nightly run's process tree) every 0.25 s and
prints the peak with ``-s``.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.retrain import retrain
from flows.score import ScoreSettings, adhoc_prefix, score
from tests.reliability.child_env import netae_child_env

pytestmark = pytest.mark.slow

CONCURRENT_SCORES = 8
SCORE_INPUT_KEY = "inbox/attack-arp-scan.pcap"
SMALL_MODELS = dict(lstm_units=8, conv_filters=8, window_length=16, window_stride=8, batch_size=128)
NIGHTLY_START_LINE = re.compile(r"Run \S+: storage ")
NIGHTLY_WAIT_S = 600
SCORE_WAIT_S = 900
RSS_SAMPLE_S = 0.25


def _tree_rss_bytes(root_pid: int) -> int:
    """Sum VmRSS of ``root_pid`` and every descendant, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry)
        children.setdefault(int(fields["PPid"].strip()), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class _RssSampler(threading.Thread):
    """Samples the RSS of a process tree until stopped; ``peak_bytes`` is the largest sample."""

    def __init__(self, root_pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self._root_pid = root_pid
        self._stop_event = threading.Event()
        self.peak_bytes = 0

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_bytes = max(self.peak_bytes, _tree_rss_bytes(self._root_pid))
            self._stop_event.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def _scores(store, run_id: str) -> dict[str, pd.DataFrame]:
    """Read each model's stored window scores of one score run, by file name."""
    prefix = adhoc_prefix(run_id) + "scores/"
    frames = {}
    for key in store.iter_keys(prefix):
        if key.endswith(".parquet"):
            frames[key[len(prefix):]] = pd.read_parquet(io.BytesIO(store.get_bytes(key)))
    return frames


def _start_nightly(storage_url: str, state_dir: Path) -> tuple[subprocess.Popen, list[str], threading.Event]:
    env = netae_child_env(storage_url, state_dir, SMALL_MODELS, epochs="2")
    child = subprocess.Popen(
        [str(Path(sys.executable).parent / "netae"), "retrain"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env, text=True, errors="replace", start_new_session=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def read_output() -> None:
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if NIGHTLY_START_LINE.search(line):
                started.set()

    threading.Thread(target=read_output, daemon=True).start()
    return child, lines, started


def test_eight_scores_during_nightly_run_match_score_alone(tmp_path, demo_sample, shared_captures):
    storage_url = f"file://{tmp_path / 'data'}"
    settings = ScoreSettings(storage_url=storage_url, spark_master="local[2]", epochs=1, **SMALL_MODELS)
    store = settings.open_store()
    store.put_file("captures/night-1/demo.pcapng", str(demo_sample / "demo.pcapng"))
    retrain(settings=settings)
    store.put_file(SCORE_INPUT_KEY, str(shared_captures / "attack-arp-scan.pcap"))
    reference = score(SCORE_INPUT_KEY, settings=settings)
    reference_scores = _scores(store, reference["run_id"])
    store.put_file("captures/night-2/demo.pcapng", str(demo_sample / "demo.pcapng"))

    sampler = _RssSampler(os.getpid())
    sampler.start()
    child, nightly_output, nightly_started = _start_nightly(storage_url, tmp_path / "nightly-state")
    try:
        deadline = time.monotonic() + NIGHTLY_WAIT_S
        while not nightly_started.wait(timeout=1.0):
            if child.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the nightly run ended or stalled before its flow started:\n" + "\n".join(nightly_output[-40:]))
        started_s = time.monotonic()
        with ThreadPoolExecutor(max_workers=CONCURRENT_SCORES, thread_name_prefix="score") as pool:
            futures = [pool.submit(score, SCORE_INPUT_KEY, settings=settings) for _ in range(CONCURRENT_SCORES)]
            results = [future.result(timeout=SCORE_WAIT_S) for future in futures]
        scoring_s = time.monotonic() - started_s
        nightly_running_after_scores = child.poll() is None
    finally:
        sampler.stop()
        # The nightly run only provides the load, and test_killed_run.py covers a
        # run stopped part-way. Its process group contains its JVM and Prefect server.
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)

    assert nightly_running_after_scores, "\n".join(nightly_output[-40:])
    assert len({result["run_id"] for result in results}) == CONCURRENT_SCORES
    for result in results:
        assert result["frames"] == reference["frames"]
        assert result["windows"] == reference["windows"]
        assert result["flagged_windows"] == reference["flagged_windows"]
        assert result["thresholds"] == pytest.approx(reference["thresholds"], rel=1e-12)
        scores = _scores(store, result["run_id"])
        assert scores.keys() == reference_scores.keys()
        for name, frame in scores.items():
            np.testing.assert_allclose(frame["score"].to_numpy(), reference_scores[name]["score"].to_numpy(), rtol=1e-6)
    sys.stdout.write(
        f"\n{CONCURRENT_SCORES} concurrent score runs took {scoring_s:.0f} s beside a nightly run; "
        f"peak RSS of the process tree {sampler.peak_bytes / 2**20:,.0f} MiB\n"
    )
