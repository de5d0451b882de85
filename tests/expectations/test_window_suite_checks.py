"""The window summary frame and the window suite, on small hand-built tensors."""

from __future__ import annotations

import numpy as np
import pytest

from expectations import validate_dataframe, window_suite, window_summary_frame
from expectations.windows import WINDOW_SUMMARY_COLUMNS

STEPS = 4
FEATURES = 3


def scaled_windows(window_count: int = 5, seed: int = 7) -> np.ndarray:
    """Return float32 windows of shape [window_count, STEPS, FEATURES] with values in [0, 1)."""
    generator = np.random.default_rng(seed)
    return generator.random((window_count, STEPS, FEATURES), dtype=np.float32)


def validate_windows(windows: np.ndarray, **suite_arguments):
    arguments = {"steps": STEPS, "features": FEATURES, **suite_arguments}
    return validate_dataframe(window_summary_frame(windows), window_suite(**arguments))


def failed_columns(outcome) -> list:
    return [failure["column"] for failure in outcome.failed]


# --- window_summary_frame -----------------------------------------------------


def test_summary_frame_has_one_row_per_window():
    windows = scaled_windows(window_count=3)

    summary = window_summary_frame(windows)

    assert list(summary.columns) == WINDOW_SUMMARY_COLUMNS
    assert summary["window_index"].tolist() == [0, 1, 2]
    assert summary["steps"].tolist() == [STEPS] * 3
    assert summary["features"].tolist() == [FEATURES] * 3
    assert summary["non_finite"].tolist() == [0, 0, 0]
    for index in range(3):
        assert summary.loc[index, "min_value"] == pytest.approx(float(windows[index].min()), abs=0)
        assert summary.loc[index, "max_value"] == pytest.approx(float(windows[index].max()), abs=0)


def test_summary_frame_ignores_non_finite_in_range():
    windows = np.array(
        [
            [[0.25, np.nan], [0.75, 0.5]],
            [[np.inf, -np.inf], [np.nan, np.nan]],
        ],
        dtype=np.float32,
    )

    summary = window_summary_frame(windows)

    assert summary["non_finite"].tolist() == [1, 4]
    assert summary.loc[0, "min_value"] == pytest.approx(0.25, abs=1e-7)
    assert summary.loc[0, "max_value"] == pytest.approx(0.75, abs=1e-7)
    assert np.isnan(summary.loc[1, "min_value"])
    assert np.isnan(summary.loc[1, "max_value"])


def test_summary_frame_spans_several_chunks(monkeypatch):
    monkeypatch.setattr("expectations.windows._SUMMARY_CHUNK_WINDOWS", 2)
    windows = scaled_windows(window_count=5)
    windows[4, 0, 0] = np.nan

    summary = window_summary_frame(windows)

    assert summary["non_finite"].tolist() == [0, 0, 0, 0, 1]
    expected_max = [float(np.nanmax(window)) for window in windows]
    assert summary["max_value"].tolist() == pytest.approx(expected_max, abs=0)


def test_summary_frame_of_no_windows_is_empty():
    summary = window_summary_frame(np.zeros((0, STEPS, FEATURES), dtype=np.float32))

    assert list(summary.columns) == WINDOW_SUMMARY_COLUMNS
    assert len(summary) == 0


def test_summary_frame_rejects_two_dimensional_input():
    with pytest.raises(ValueError, match=r"windows must be a 3-dimensional array \[windows, steps, features\]; received shape \(4, 3\)\."):
        window_summary_frame(np.zeros((4, 3), dtype=np.float32))


def test_summary_frame_rejects_string_values():
    with pytest.raises(TypeError, match=r"windows must hold integers or floats; received dtype <U1\."):
        window_summary_frame(np.full((1, 2, 2), "a"))


# --- window_suite ---------------------------------------------------------------


def test_valid_windows_pass():
    outcome = validate_windows(scaled_windows())

    assert outcome.failed == []
    assert outcome.success is True
    assert outcome.suite_name == "windows"
    assert outcome.evaluated == 6


def test_values_on_both_bounds_pass():
    windows = scaled_windows()
    windows[0, 0, 0] = 0.0
    windows[1, 0, 0] = 1.0

    assert validate_windows(windows).success is True


def test_nan_fails_naming_non_finite():
    windows = scaled_windows()
    windows[2, 1, 0] = np.nan

    outcome = validate_windows(windows)

    assert outcome.success is False
    assert failed_columns(outcome) == ["non_finite"]
    [failure] = outcome.failed
    assert failure["details"]["unexpected_count"] == 1
    assert failure["details"]["rows"][0]["window_index"] == 2


def test_infinity_fails_naming_non_finite():
    windows = scaled_windows()
    windows[0, 0, 2] = np.inf

    outcome = validate_windows(windows)

    assert failed_columns(outcome) == ["non_finite"]


def test_value_above_upper_fails_naming_max_value():
    windows = scaled_windows()
    windows[3, 2, 1] = 1.5

    outcome = validate_windows(windows)

    assert outcome.success is False
    assert failed_columns(outcome) == ["max_value"]
    [failure] = outcome.failed
    assert failure["details"]["sample"] == [pytest.approx(1.5)]
    assert failure["details"]["rows"][0]["window_index"] == 3


def test_value_below_lower_fails_naming_min_value():
    windows = scaled_windows()
    windows[1, 0, 0] = -0.25

    outcome = validate_windows(windows)

    assert failed_columns(outcome) == ["min_value"]


def test_custom_bounds_apply():
    windows = scaled_windows() * 2.0 - 1.0  # values in [-1, 1)

    assert validate_windows(windows, lower=-1.0, upper=1.0).success is True
    assert failed_columns(validate_windows(windows)) == ["min_value"]


def test_wrong_step_count_fails_naming_steps():
    windows = np.random.default_rng(3).random((5, STEPS + 1, FEATURES), dtype=np.float32)

    outcome = validate_windows(windows)

    assert outcome.success is False
    assert failed_columns(outcome) == ["steps"]
    assert outcome.failed[0]["details"]["unexpected_count"] == 5


def test_wrong_feature_count_fails_naming_features():
    windows = np.random.default_rng(3).random((5, STEPS, FEATURES - 1), dtype=np.float32)

    outcome = validate_windows(windows)

    assert failed_columns(outcome) == ["features"]


def test_no_windows_fails_on_row_count():
    outcome = validate_windows(np.zeros((0, STEPS, FEATURES), dtype=np.float32))

    assert outcome.success is False
    [failure] = outcome.failed
    assert failure["expectation"] == "expect_table_row_count_to_be_between"
    assert failure["column"] is None
    assert failure["details"]["observed_value"] == 0


def test_validating_twice_gives_same_outcome():
    suite = window_suite(steps=STEPS, features=FEATURES)
    windows = scaled_windows()
    windows[0, 0, 0] = np.nan
    summary = window_summary_frame(windows)

    first = validate_dataframe(summary, suite)
    second = validate_dataframe(summary, suite)

    assert first.failed == second.failed
    assert failed_columns(second) == ["non_finite"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"steps": 0, "features": 3}, r"steps must be an integer of at least 1; received 0\."),
        ({"steps": 4, "features": 2.5}, r"features must be an integer of at least 1; received 2\.5\."),
        ({"steps": 4, "features": 3, "upper": float("nan")}, r"upper must be a finite number; received nan\."),
        ({"steps": 4, "features": 3, "lower": 2.0, "upper": 1.0}, r"lower must not exceed upper; received lower=2\.0, upper=1\.0\."),
    ],
)
def test_window_suite_rejects_invalid_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        window_suite(**arguments)
