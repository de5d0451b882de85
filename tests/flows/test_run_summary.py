"""The markdown summary that a retraining run publishes as a Prefect artifact."""

from __future__ import annotations

from flows.publish_tasks import metrics_markdown
from tests.false_alarm_samples import false_alarm_result

METRICS = {
    "accuracy": 0.9, "precision": 0.95, "recall": 0.86, "f1": 0.9, "pr_auc": 0.96,
    "flagged_share": 0.4, "evaluated_windows": 283,
}


def test_summary_lists_false_alarm_checks():
    metrics = {"conv1d": {**METRICS, "false_alarms": false_alarm_result()}, "lstm": dict(METRICS)}

    markdown = metrics_markdown("run-1", metrics, "file:///store/reports/run-1/report.html", [])

    assert "False-alarm rate of normal windows against the threshold's promise:" in markdown
    assert ("- conv1d: promised 0.010 (pot), same period 0.005 of 186 windows, "
            "later period 0.039 of 155 windows (above 2 times the promise)") in markdown
    assert "- lstm:" not in markdown


def test_summary_without_checks_has_no_false_alarm_section():
    markdown = metrics_markdown("run-1", {"lstm": dict(METRICS)}, "file:///store/report.html", [])

    assert "False-alarm rate" not in markdown
