"""The drift suite on real captures: a capture matches its own baseline and a scan moves away from it."""

from __future__ import annotations

import pytest

from expectations.drift_suite import check_drift, drift_summary_from_rows
from spark_jobs.decoder import decode_to_table
from spark_jobs.feature_baseline import baseline_of
from spark_jobs.features import FEATURE_SET_NAMES, derive_rows, feature_set


def _rows(folder, name: str, set_name: str):
    table, _summary = decode_to_table(folder / name, capture_id=name, name=name)
    return derive_rows(table.to_pandas(), set_name)


def _baselines(rows, set_name: str) -> dict[str, dict]:
    return {name: baseline_of(rows[name].to_numpy()) for name in feature_set(set_name).numeric_features}


@pytest.mark.parametrize("set_name", FEATURE_SET_NAMES)
def test_real_capture_passes_against_its_own_baseline(shared_captures, set_name):
    rows = _rows(shared_captures, "benign-http-web-bro-org.pcap", set_name)
    report = check_drift(drift_summary_from_rows(rows, _baselines(rows, set_name)))
    assert report.outcome.success
    assert report.moved == []


def test_syn_scan_moves_away_from_web_browsing(shared_captures):
    baseline = _baselines(_rows(shared_captures, "benign-http-web-bro-org.pcap", "paper"), "paper")
    scan = _rows(shared_captures, "attack-nmap-syn-scan.pcap", "paper")
    report = check_drift(drift_summary_from_rows(scan, baseline))
    assert not report.outcome.success
    assert "frame_len" in report.moved
    assert "tcp_flags" in report.moved
