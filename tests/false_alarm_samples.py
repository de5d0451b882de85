"""A ``false_alarm_check`` result of the shape the retraining flow stores, for tests of what displays it."""

from __future__ import annotations


def false_alarm_result(later_rate: float | None = 0.039, later_kept: bool | None = False) -> dict:
    """Return a ``pot`` check that keeps its promise in the same period. The arguments set the later period."""
    return {
        "method": "pot",
        "promised_rate": 0.01,
        "tolerance": 2.0,
        "same_period": {"rate": 0.005, "windows": 186, "kept": True},
        "later_period": {"rate": later_rate, "windows": 155 if later_rate is not None else 0,
                         "episodes": 1 if later_rate else 0, "above_calibration_max": 4 if later_rate else 0,
                         "above_calibration_expected": 0.83 if later_rate else 0.0,
                         "above_calibration_p90": 0.26 if later_rate is not None else None,
                         "above_calibration_p90_expected": 0.099 if later_rate is not None else 0.0,
                         "kept": later_kept},
    }
