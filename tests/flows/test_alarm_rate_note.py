"""The scoring report's note on a flagged share above the threshold's promise."""

from __future__ import annotations

import numpy as np

from flows.score import alarm_rate_note
from models.thresholds import Threshold

POT = Threshold(method="pot", value=0.02, params={"target_false_alarm_rate": 0.01, "initial_quantile": 0.8})


def test_share_within_twice_promise_gives_no_note():
    flagged = np.zeros(400, dtype=bool)
    flagged[:8] = True

    assert alarm_rate_note("conv1d", flagged, POT) is None


def test_share_above_twice_promise_gives_note():
    flagged = np.zeros(400, dtype=bool)
    flagged[:9] = True

    note = alarm_rate_note("conv1d", flagged, POT)

    assert note is not None
    assert "The conv1d model flagged 9 of 400 windows (2.2%)" in note
    assert "the 1.0% false-alarm rate its pot threshold promises" in note
    assert "retrain on recent traffic" in note


def test_mean_k_std_promise_is_cantelli_bound():
    threshold = Threshold(method="mean_k_std", value=1.0, params={"k": 3.0, "mean": 0.5, "std": 0.1})
    # k = 3 promises 1 / (1 + 9) = 0.1, so 20 of 100 windows keep it and 21 do not.
    flagged = np.arange(100) < 20

    assert alarm_rate_note("lstm", flagged, threshold) is None
    assert alarm_rate_note("lstm", np.arange(100) < 21, threshold) is not None


def test_no_windows_give_no_note():
    assert alarm_rate_note("lstm", np.zeros(0, dtype=bool), POT) is None
