"""Inputs that break a documented contract raise ValueError with the field and the value."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest

from reports import CaptureEntry, render_report


def test_naive_creation_time_is_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.created_utc = datetime(2024, 12, 4, 9, 30)

    with pytest.raises(ValueError, match=re.escape("created_utc must be timezone-aware, got naive 2024-12-04T09:30:00. Pass an aware time")):
        render_report(inputs)


def test_missing_packet_column_is_named(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.packets = inputs.packets.drop(columns=["frame_len"])

    with pytest.raises(ValueError, match=re.escape("packets is missing column(s) ['frame_len']. The report needs")):
        render_report(inputs)


def test_unknown_capture_status_is_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.captures.append(CaptureEntry("c9", "captures/c9.pcap", 3, "skipped", "x"))

    with pytest.raises(ValueError, match=re.escape("capture 'c9' has invalid status 'skipped'. Expected one of ['decoded', 'set aside'].")):
        render_report(inputs)


def test_negative_frame_count_is_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.captures[0].frames = -1

    with pytest.raises(ValueError, match=re.escape("capture 'office-lan' has invalid frames=-1. Expected 0 or more.")):
        render_report(inputs)


def test_duplicate_model_kind_is_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.models.append(report_builders.make_model("lstm", 10, labelled=True))

    with pytest.raises(ValueError, match=re.escape("models has two sections of kind 'lstm'. Give one section per kind.")):
        render_report(inputs)


@pytest.mark.parametrize("kind", ["LSTM", "", "cnn model", "<b>"])
def test_invalid_model_kind_is_rejected(report_builders, kind):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.models[0].kind = kind

    with pytest.raises(ValueError, match=re.escape(f"model kind {kind!r} is invalid. Use lower-case letters, digits, '_' and '-'.")):
        render_report(inputs)


def test_mismatched_window_arrays_are_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.models[0].window_scores = np.zeros(9)

    with pytest.raises(ValueError, match=re.escape("window_start_ns has shape (10,) and window_scores has shape (9,)")):
        render_report(inputs)


def test_labels_other_than_zero_one_are_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    labels = np.zeros(10, dtype=np.int8)
    labels[2] = 2
    inputs.models[1].window_labels = labels

    with pytest.raises(ValueError, match=re.escape("model 'conv1d': window_labels contains [2]")):
        render_report(inputs)


def test_label_count_must_match_windows(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.models[0].window_labels = np.zeros(11, dtype=np.int8)

    with pytest.raises(ValueError, match=re.escape("window_labels has shape (11,), window_scores has shape (10,)")):
        render_report(inputs)


@pytest.mark.parametrize("confusion", [[[1, 2, 3], [4, 5, 6]], [[1, -1], [0, 2]]])
def test_malformed_confusion_is_rejected(report_builders, confusion):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.models[0].confusion = confusion

    with pytest.raises(ValueError, match=re.escape("Expected [[tn, fp], [fn, tp]] with counts of 0 or more.")):
        render_report(inputs)


def test_non_finite_threshold_is_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)
    inputs.models[0].threshold = float("nan")

    with pytest.raises(ValueError, match=re.escape("model 'lstm' has invalid threshold nan. Expected a finite number.")):
        render_report(inputs)


def test_top_addresses_below_one_is_rejected(report_builders):
    inputs = report_builders.make_inputs(frames=10, windows=10)

    with pytest.raises(ValueError, match=re.escape("top_addresses must be at least 1, got 0")):
        render_report(inputs, top_addresses=0)
