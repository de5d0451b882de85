"""Counts, scales and formats behind the plots and tables, checked against direct computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports import model_plots, tables, traffic_plots


def test_confusion_from_labels_matches_brute_count(report_builders):
    model = report_builders.make_model("lstm", 200, labelled=True)
    model.confusion = None
    scores = np.asarray(model.window_scores)
    scores[5] = np.nan
    model.window_scores = scores

    counts = model_plots.confusion_counts(model)

    expected = np.zeros((2, 2), dtype=np.int64)
    for score, label in zip(scores, model.window_labels):
        if np.isfinite(score):
            expected[int(label), int(score > model.threshold)] += 1
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == 199


def test_given_confusion_wins_over_labels(report_builders):
    model = report_builders.make_model("lstm", 50, labelled=True)
    model.confusion = [[1, 2], [3, 4]]

    np.testing.assert_array_equal(model_plots.confusion_counts(model), [[1, 2], [3, 4]])


def test_unlabelled_model_has_no_confusion(report_builders):
    model = report_builders.make_model("conv1d", 50, labelled=False)

    assert model_plots.confusion_counts(model) is None


def test_threshold_equal_score_is_not_flagged(report_builders):
    model = report_builders.make_model("lstm", 4, labelled=False)
    model.window_scores = np.array([0.5, 1.0, 1.5, 2.0])
    model.threshold = 1.5

    row = tables.metrics_row(model)

    assert row.flagged == "1 of 4"
    assert row.threshold == "1.5"


def test_error_plot_counts_flagged_windows(report_builders):
    model = report_builders.make_model("lstm", 100, labelled=True)
    flagged = int(np.sum(np.asarray(model.window_scores) > model.threshold))

    plot = model_plots.plot_reconstruction_error(model)

    assert f"{flagged} of 100 windows are above it." in plot.caption
    assert "Red points are the 5 windows labelled anomalous." in plot.caption


def test_error_axis_turns_log_for_wide_spread(report_builders):
    model = report_builders.make_model("lstm", 100, labelled=True)
    scores = np.asarray(model.window_scores).copy()
    scores[10] = scores.min() * 1e4
    model.window_scores = scores

    assert "logarithmic" in model_plots.plot_reconstruction_error(model).caption


def test_error_axis_stays_linear_for_narrow_spread(report_builders):
    model = report_builders.make_model("lstm", 100, labelled=True)

    assert "logarithmic" not in model_plots.plot_reconstruction_error(model).caption


def test_heatmap_counts_shown_pairs():
    packets = pd.DataFrame(
        {
            "src_addr": ["a", "a", "a", "b", "b", "c", None],
            "dst_addr": ["x", "x", "y", "x", "z", "z", "x"],
            "frame_len": [60] * 7,
            "timestamp_ns": range(7),
            "protocol": ["TCP"] * 7,
        }
    )

    plot = traffic_plots.plot_ip_heatmap(packets, top_addresses=2)

    # Top sources a (3) and b (2); top destinations x (3) then z (2) before y (1).
    assert "each of the 2 busiest source addresses (rows) to each of the 2 busiest destination addresses" in plot.caption
    assert "The shown pairs carry 4 of 6 frames with addresses." in plot.caption
    assert "1 frames without a source or destination address are not counted." in plot.caption
    assert "Busiest pair: a to x, 2 packets." in plot.alt_text


def test_length_summary_matches_numpy(report_builders):
    packets = report_builders.make_packets(500)
    lengths = packets["frame_len"].to_numpy()

    plot = traffic_plots.plot_length_distribution(packets)

    assert f"median {float(np.median(lengths)):g} bytes, maximum {lengths.max()} bytes" in plot.caption


def test_packet_summary_matches_table(report_builders):
    packets = report_builders.make_packets(500)

    summary = tables.summarize_packets(packets)

    assert summary.frames == 500
    assert summary.source_addresses == packets["src_addr"].nunique()
    assert summary.destination_addresses == packets["dst_addr"].nunique()
    span_s = (packets["timestamp_ns"].max() - packets["timestamp_ns"].min()) / 1e9
    assert float(summary.span_s) == pytest.approx(span_s, abs=5e-4)
    assert sum(count for _, count, _ in summary.protocols) == 500
    assert [name for name, _, _ in summary.protocols] == packets["protocol"].value_counts().index.tolist()


def test_utc_format_keeps_nanoseconds():
    assert tables.format_utc_ns(1_733_300_000_000_001_100) == "2024-12-04T08:13:20.000001100Z"
    assert tables.format_utc_ns(0) == "1970-01-01T00:00:00.000000000Z"


def test_undefined_metric_is_labelled(report_builders):
    model = report_builders.make_model("lstm", 20, labelled=True)
    model.metrics = {"accuracy": 0.95, "precision": float("nan")}

    row = tables.metrics_row(model)

    assert row.metrics[:3] == ["0.9500", "undefined", "n/a"]
    assert set(row.metrics[3:]) == {"n/a"}
    assert len(row.metrics) == len(tables.METRIC_COLUMNS)


def test_history_plot_reports_final_values(report_builders):
    model = report_builders.make_model("conv1d", 20, labelled=True)

    plot = model_plots.plot_training_history(model)

    assert plot.plot_id == "history-conv1d"
    assert plot.alt_text == "Training history of the conv1d model: final loss 0.03, final val_loss 0.045."
