"""Empty and partial inputs render with notes in place of plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports import render_report


def test_zero_packets_give_notes(report_builders):
    inputs = report_builders.make_inputs(frames=0, windows=50)

    report = report_builders.parse_report(render_report(inputs))

    for plot_id in ("ip-heatmap", "length-distribution", "packet-rate"):
        figure = report.figures[plot_id]
        assert figure.image_src is None, plot_id
        assert "no" in figure.note.lower(), plot_id
    assert "The packet table of this run is empty." in report.text


def test_packets_with_only_required_columns_render(report_builders):
    inputs = report_builders.make_inputs(frames=0, windows=10)
    inputs.packets = pd.DataFrame(columns=["src_addr", "dst_addr", "frame_len", "timestamp_ns", "protocol"])

    report = report_builders.parse_report(render_report(inputs))

    assert report.figures["length-distribution"].image_src is None


def test_zero_windows_give_error_note(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=0)

    report = report_builders.parse_report(render_report(inputs))

    for kind in ("lstm", "conv1d"):
        figure = report.figures[f"error-{kind}"]
        assert figure.image_src is None
        assert f"The {kind} model has no window with a finite score (0 windows)" in figure.note
        assert report.figures[f"confusion-{kind}"].image_src is not None


def test_missing_model_kind_gets_notes(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    inputs.models = [model for model in inputs.models if model.kind == "lstm"]

    document = render_report(inputs)
    report = report_builders.parse_report(document)

    assert report.figures["error-lstm"].image_src is not None
    for plot_id in ("confusion-conv1d", "error-conv1d"):
        assert report.figures[plot_id].image_src is None
        assert report.figures[plot_id].note == "This run has no conv1d model, so there is nothing to plot for it."
    assert 'data-missing-model="conv1d"' in document
    assert 'data-missing-model="lstm"' not in document


def test_no_models_render(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    inputs.models = []

    report = report_builders.parse_report(render_report(inputs))

    assert report.figure_order == [
        "ip-heatmap",
        "length-distribution",
        "packet-rate",
        "confusion-lstm",
        "error-lstm",
        "confusion-conv1d",
        "error-conv1d",
    ]
    assert "This run has no lstm model." in report.text


def test_no_labels_case_says_so(unlabelled_inputs, report_builders):
    document = render_report(unlabelled_inputs)
    report = report_builders.parse_report(document)

    for kind in ("lstm", "conv1d"):
        figure = report.figures[f"confusion-{kind}"]
        assert figure.image_src is None
        assert figure.note.startswith(f"No labels exist for the {kind} model's windows")
        assert "Red points" not in report.figures[f"error-{kind}"].caption
    flagged_share = unlabelled_inputs.models[0].metrics["flagged_share"]
    assert f"{flagged_share:.4f}" in report.text
    assert "<td class=\"number\">n/a</td>" in document


def test_labels_without_confusion_are_counted(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    inputs.models[0].confusion = None

    report = report_builders.parse_report(render_report(inputs))

    figure = report.figures["confusion-lstm"]
    assert figure.image_src is not None
    assert "computed from the window labels and scores" in figure.caption


def test_missing_history_omits_its_figure(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    inputs.models[0].training_history = None
    inputs.models[1].training_history = {"loss": []}

    report = report_builders.parse_report(render_report(inputs))

    assert "history-lstm" not in report.figures
    assert "history-conv1d" not in report.figures


def test_single_timestamp_gives_rate_note(report_builders):
    inputs = report_builders.make_inputs(frames=5, windows=10)
    packets = inputs.packets.copy()
    packets["timestamp_ns"] = packets["timestamp_ns"].iloc[0]
    inputs.packets = packets

    report = report_builders.parse_report(render_report(inputs))

    assert report.figures["packet-rate"].note == "All 5 frames have the same timestamp, so there is no rate over time."
    assert report.figures["length-distribution"].image_src is not None


def test_non_finite_scores_are_left_out(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    scores = np.array(inputs.models[0].window_scores, dtype=np.float64)
    scores[[3, 7]] = [np.nan, np.inf]
    inputs.models[0].window_scores = scores

    report = report_builders.parse_report(render_report(inputs))

    assert "2 windows with a non-finite score are not drawn." in report.figures["error-lstm"].caption


def test_all_non_finite_scores_give_note(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    inputs.models[1].window_scores = np.full(40, np.nan)
    inputs.models[1].confusion = None

    report = report_builders.parse_report(render_report(inputs))

    assert report.figures["error-conv1d"].image_src is None
    assert "no window with a finite score (40 windows)" in report.figures["error-conv1d"].note


def test_no_captures_and_links_give_notes(report_builders):
    inputs = report_builders.make_inputs(frames=100, windows=40)
    inputs.captures = []
    inputs.links = {}

    report = report_builders.parse_report(render_report(inputs))

    assert "This run has no captures." in report.text
    assert "No artifact locations were given." in report.text
