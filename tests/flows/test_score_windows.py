"""How the score flow maps windows back to frames, comments frames and summarises a run.

Window arithmetic is checked against a brute-force cut of the same rows.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from flows.score import ScoreSettings, score_markdown
from flows.score_windows import WindowFrames, frame_comments
from spark_jobs.features import Preprocessing, fit_preprocessing
from spark_jobs.windows import window_count


def state(length: int, stride: int, mode: str = "capture") -> Preprocessing:
    fitted = fit_preprocessing({}, {}, {}, window_length=length, window_stride=stride)
    fitted.window_mode = mode
    return fitted


def frame_rows(frames: int, seed: int = 3) -> pd.DataFrame:
    """Frame-level row metadata with shuffled file order, a tie in time and two hosts."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 10_000, size=frames))
    times[5] = times[4]
    numbers = rng.permutation(np.arange(1, frames + 1))
    return pd.DataFrame(
        {
            "host": rng.choice(["192.0.2.1", "192.0.2.2"], size=frames),
            "first_frame": numbers,
            "last_frame": numbers,
            "start_ns": times,
        }
    )


def brute_force_windows(rows: pd.DataFrame, length: int, stride: int) -> list[list[int]]:
    ordered = sorted(zip(rows["start_ns"], rows["first_frame"]))
    frames = [number for _time, number in ordered]
    return [frames[start:start + length] for start in range(0, len(frames) - length + 1, stride)]


@pytest.mark.parametrize(("frames", "length", "stride"), [(50, 8, 4), (50, 8, 8), (33, 16, 3), (16, 16, 1)])
def test_capture_windows_match_brute_force(frames, length, stride):
    rows = frame_rows(frames)
    mapping = WindowFrames(rows, state(length, stride))
    expected = brute_force_windows(rows, length, stride)

    assert len(expected) == window_count(frames, length, stride)
    for index, frames_of_window in enumerate(expected):
        assert mapping.frames(index) == frames_of_window


def test_host_windows_stay_inside_host():
    rows = frame_rows(60)
    mapping = WindowFrames(rows, state(6, 3, mode="host"))

    for host, group in rows.groupby("host"):
        expected = brute_force_windows(group, 6, 3)
        for index, frames_of_window in enumerate(expected):
            assert mapping.frames(index, host) == frames_of_window
    assert mapping.frames(0, "198.51.100.9") == []


def test_window_past_end_is_short():
    mapping = WindowFrames(frame_rows(10), state(8, 4))

    assert len(mapping.frames(1)) == 6
    assert mapping.frames(5) == []


def test_frame_comment_comes_from_best_window():
    rows = frame_rows(20)
    mapping = WindowFrames(rows, state(8, 4))
    flagged = pd.DataFrame({"window_index": [0, 1], "host": [None, None], "score": [0.2, 0.9]})

    comments = frame_comments("lstm", flagged, mapping, threshold=0.1)

    only_first = set(mapping.frames(0)) - set(mapping.frames(1))
    shared = set(mapping.frames(0)) & set(mapping.frames(1))
    assert set(comments) == set(mapping.frames(0)) | set(mapping.frames(1))
    assert len(shared) == 4
    for number in only_first:
        assert comments[number] == "netae lstm: window 0 score 0.2 > threshold 0.1"
    for number in shared:
        assert comments[number] == "netae lstm: window 1 score 0.9 > threshold 0.1"


def test_no_flagged_window_no_comment():
    mapping = WindowFrames(frame_rows(20), state(8, 4))
    flagged = pd.DataFrame({"window_index": pd.Series([], dtype="int64"), "host": [], "score": pd.Series([], dtype="float64")})

    assert frame_comments("conv1d", flagged, mapping, threshold=0.1) == {}


def brute_force_frame_scores(windows: list[list[int]], scores: list[float]) -> dict[int, float]:
    best: dict[int, float] = {}
    for frames, score in zip(windows, scores):
        for number in frames:
            best[number] = max(best.get(number, score), score)
    return best


def test_frame_scores_match_brute_force_capture_mode():
    rows = frame_rows(50)
    mapping = WindowFrames(rows, state(8, 3))
    windows = brute_force_windows(rows, 8, 3)
    scores = np.random.default_rng(1).random(len(windows)).tolist()
    table = pd.DataFrame({"window_index": range(len(windows)), "host": None, "score": scores})

    frame_scores = mapping.frame_scores(table)

    assert dict(zip(frame_scores["frame_number"], frame_scores["score"])) == brute_force_frame_scores(windows, scores)
    assert frame_scores["frame_number"].is_monotonic_increasing


def test_frame_scores_stay_inside_host():
    rows = frame_rows(60)
    mapping = WindowFrames(rows, state(6, 3, mode="host"))
    expected: dict[int, float] = {}
    pieces = []
    for offset, (host, group) in enumerate(rows.groupby("host")):
        windows = brute_force_windows(group, 6, 3)
        scores = [0.1 * offset + 0.01 * index for index in range(len(windows))]
        expected.update(brute_force_frame_scores(windows, scores))
        pieces.append(pd.DataFrame({"window_index": range(len(windows)), "host": host, "score": scores}))

    frame_scores = mapping.frame_scores(pd.concat(pieces, ignore_index=True))

    assert dict(zip(frame_scores["frame_number"], frame_scores["score"])) == pytest.approx(expected)


def test_flow_rows_score_first_and_last_frames():
    rows = pd.DataFrame({"host": None, "first_frame": [1, 2, 5], "last_frame": [4, 3, 9], "start_ns": [10, 20, 30]})
    fitted = state(2, 1)
    fitted.feature_set = "flow"
    mapping = WindowFrames(rows, fitted)
    table = pd.DataFrame({"window_index": [0, 1], "host": None, "score": [0.25, 0.5]})

    frame_scores = mapping.frame_scores(table)

    assert dict(zip(frame_scores["frame_number"], frame_scores["score"])) == {1: 0.25, 4: 0.25, 2: 0.5, 3: 0.5, 5: 0.5, 9: 0.5}


def test_markdown_lists_metrics_and_locations():
    summary = {
        "run_id": "20261204T203000Z-abc123",
        "capture": "captures/adhoc/x/demo.pcapng",
        "frames": 8917,
        "windows": {"lstm": 1110, "conv1d": 1110},
        "flagged_windows": {"lstm": 40, "conv1d": 31},
        "thresholds": {"lstm": 0.0123456, "conv1d": 0.02},
        "metrics": {"lstm": {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "flagged_share": 0.036}, "conv1d": {"flagged_share": 0.028}},
        "exported_frames": 77,
        "display_filter": "frame.number in {1..8}",
        "top_hosts": {"lstm": [{"address": "192.0.2.7", "score": 0.0421, "frames": 412, "flagged_frames": 310, "top_frame": 77}],
                      "conv1d": []},
    }

    markdown = score_markdown(summary, "file:///d/reports/adhoc/x/report.html", "file:///d/reports/adhoc/x/flagged.pcapng")

    assert "| lstm | 1110 | 40 | 0.0123456 | 0.500 | 0.250 | 0.333 |" in markdown
    assert "| conv1d | 1110 | 31 | 0.02 | n/a | n/a | n/a |" in markdown
    assert "Report: `file:///d/reports/adhoc/x/report.html`" in markdown
    assert "Flagged frames (77): `file:///d/reports/adhoc/x/flagged.pcapng`" in markdown
    assert "Display filter: `frame.number in {1..8}`" in markdown
    assert "Highest-scoring lstm hosts: 192.0.2.7 (0.0421 at frame 77, 310 of 412 frames flagged)" in markdown
    assert "conv1d hosts" not in markdown


def test_pseudonymize_setting_reads_environment(monkeypatch):
    monkeypatch.setenv("NETAE_PSEUDONYMIZE", "true")
    monkeypatch.setenv("NETAE_PSEUDONYM_KEY", "environment-key-0123456789abcdef")

    settings = ScoreSettings()

    assert settings.pseudonymize is True
    assert "environment-key" not in repr(settings)
    assert settings.pseudonymizer().address("192.0.2.1").startswith("ip4-")


def test_short_pseudonym_key_rejected_early(monkeypatch):
    monkeypatch.setenv("NETAE_PSEUDONYM_KEY", "short")

    with pytest.raises(ValueError, match="the pseudonym key must be at least 16 bytes, got 5"):
        ScoreSettings(pseudonymize=True)


def test_pseudonymizer_absent_by_default(monkeypatch):
    monkeypatch.delenv("NETAE_PSEUDONYMIZE", raising=False)

    assert ScoreSettings().pseudonymizer() is None


def test_cli_score_help_names_options():
    environment = {**os.environ, "COLUMNS": "200"}

    result = subprocess.run([sys.executable, "-m", "flows.cli", "score", "--help"], capture_output=True, text=True, timeout=120, env=environment)

    assert result.returncode == 0, result.stderr[-2000:]
    assert "--pseudonymize" in result.stdout
    assert "NETAE_PSEUDONYM_KEY" in result.stdout
    assert "(env NETAE_STORAGE_URL)" in result.stdout
