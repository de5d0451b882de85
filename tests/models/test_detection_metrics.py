"""Ranking metrics, false alarms, and per-attack recall and detection delay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import (
    AttackSpan,
    alarm_episode_windows,
    alarm_episodes,
    attack_windows,
    binary_metrics,
    false_alarm_rate,
    oracle_metrics,
    per_attack_metrics,
    ranking_metrics,
)

S = 1_000_000_000


def test_ranking_metrics_perfect_order():
    metrics = ranking_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert metrics["roc_auc"] == pytest.approx(1.0)
    assert metrics["pr_auc"] == pytest.approx(1.0)


def test_ranking_metrics_average_precision_by_hand():
    # Ranked: 1 (hit), 0, 1 (hit): precision 1/1 at the first hit, 2/3 at the second.
    metrics = ranking_metrics(np.array([1, 0, 1]), np.array([0.9, 0.8, 0.7]))
    assert metrics["pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert metrics["roc_auc"] == pytest.approx(0.5)


def test_ranking_metrics_single_class_is_none():
    assert ranking_metrics(np.zeros(5), np.arange(5.0)) == {"roc_auc": None, "pr_auc": None}


def test_false_alarm_rate_counts_normal_windows_only():
    assert false_alarm_rate(np.array([0, 0, 0, 0, 1]), np.array([True, False, False, False, True])) == pytest.approx(0.25)
    assert false_alarm_rate(np.array([1]), np.array([True])) is None


def _windows() -> pd.DataFrame:
    # Capture "a": windows of 4 frames every 4 frames, one second per frame.
    first = np.arange(1, 41, 4)
    return pd.DataFrame(
        {
            "capture_id": "a",
            "first_frame": first,
            "last_frame": first + 3,
            "start_ns": (first - 1) * S,
            "end_ns": (first + 2) * S,
            "label": [0, 0, 1, 1, 1, 0, 0, 1, 1, 0],
        }
    )


def test_attack_windows_overlap_its_frame_range():
    mask = attack_windows(_windows(), AttackSpan("a", "scan", 10, 16))
    assert mask.tolist() == [False, False, True, True, False, False, False, False, False, False]


def test_attack_windows_ignore_other_captures():
    assert not attack_windows(_windows(), AttackSpan("b", "scan", 1, 40)).any()


def test_per_attack_recall_and_delay():
    metadata = _windows()
    flagged = np.array([False, False, False, True, True, False, False, True, True, False])
    spans = [AttackSpan("a", "scan", 10, 20, start_ns=9 * S), AttackSpan("a", "tunnel", 29, 36, start_ns=28 * S)]
    result = per_attack_metrics(metadata, flagged, spans)
    # scan: windows 9-12, 13-16, 17-20 are its anomalous windows; the first flagged ends at frame 16 (15 s).
    assert result["scan"]["windows"] == 3
    assert result["scan"]["recall"] == pytest.approx(2 / 3)
    assert result["scan"]["detection_delay_s"] == pytest.approx(15.0 - 9.0)
    assert result["tunnel"]["recall"] == pytest.approx(1.0)
    assert result["tunnel"]["detection_delay_s"] == pytest.approx(31.0 - 28.0)


def test_undetected_attack_has_no_delay():
    result = per_attack_metrics(_windows(), np.zeros(10, dtype=bool), [AttackSpan("a", "scan", 10, 20)])
    assert result["scan"]["recall"] == pytest.approx(0.0)
    assert result["scan"]["detected"] == 0
    assert result["scan"]["detection_delay_s"] is None


def _frame_windows(first_frames, capture_ids=None, length: int = 32) -> pd.DataFrame:
    first = np.asarray(first_frames)
    return pd.DataFrame({"capture_id": capture_ids or ["c1"] * len(first), "first_frame": first, "last_frame": first + length - 1})


def test_overlapping_flagged_windows_are_one_episode():
    metadata = _frame_windows([1, 5, 9, 200, 204, 400])
    assert alarm_episodes(metadata, np.array([True, True, True, True, True, False])) == 2


def test_adjacent_window_joins_episode():
    metadata = _frame_windows([1, 33, 66])
    assert alarm_episodes(metadata, np.array([True, True, True])) == 2


def test_episodes_never_span_two_captures():
    metadata = _frame_windows([1, 5], capture_ids=["c1", "c2"])
    assert alarm_episodes(metadata, np.array([True, True])) == 2


def test_no_flagged_window_is_no_episode():
    assert alarm_episodes(_frame_windows([1, 5]), np.array([False, False])) == 0


def test_oracle_metrics_by_hand():
    # Ranked: 1, 1, 0, 1, 0. Flagging the top two gives F1 0.8, the top four 6/7 (about 0.857).
    labels = np.array([1, 1, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    oracle = oracle_metrics(labels, scores)
    assert oracle["method"] == "oracle_best_f1"
    assert oracle["f1"] == pytest.approx(6 / 7)
    assert oracle["recall"] == pytest.approx(1.0)
    assert oracle["precision"] == pytest.approx(0.75)
    assert 0.1 <= oracle["threshold"] < 0.6


def test_oracle_f1_not_below_any_threshold():
    rng = np.random.default_rng(3)
    labels = (rng.random(300) < 0.2).astype(int)
    scores = rng.normal(size=300) + 1.5 * labels
    oracle = oracle_metrics(labels, scores)
    for cut in np.quantile(scores, np.linspace(0.05, 0.95, 19)):
        assert oracle["f1"] >= binary_metrics(labels, scores > cut)["f1"] - 1e-12


def test_oracle_metrics_without_anomalies_is_none():
    assert oracle_metrics(np.zeros(4, dtype=int), np.arange(4.0)) is None


def test_episode_windows_name_each_episode():
    metadata = _frame_windows([200, 1, 5, 204, 400, 9], capture_ids=["c1", "c1", "c1", "c1", "c2", "c1"])
    episodes = alarm_episode_windows(metadata, np.array([True, True, True, True, True, False]))

    assert sorted(list(episode) for episode in episodes) == [[0, 3], [1, 2], [4]]
