"""The rendered document: sections, every plot, valid embedded PNGs, no external reference."""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from reports import render_report
from tests.false_alarm_samples import false_alarm_result

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI_PREFIX = "data:image/png;base64,"
LABELLED_PLOTS = [
    "ip-heatmap",
    "length-distribution",
    "packet-rate",
    "confusion-lstm",
    "error-lstm",
    "history-lstm",
    "confusion-conv1d",
    "error-conv1d",
    "history-conv1d",
]


def test_every_plot_has_figure(labelled_document, report_builders):
    report = report_builders.parse_report(labelled_document)

    assert report.figure_order == LABELLED_PLOTS
    for plot_id in LABELLED_PLOTS:
        assert report.figures[plot_id].caption.strip(), plot_id


def test_every_plot_is_valid_png(labelled_document, report_builders):
    report = report_builders.parse_report(labelled_document)

    for plot_id in LABELLED_PLOTS:
        figure = report.figures[plot_id]
        assert figure.image_src is not None, plot_id
        assert figure.image_src.startswith(DATA_URI_PREFIX), plot_id

        try:
            png = base64.b64decode(figure.image_src[len(DATA_URI_PREFIX) :], validate=True)
        except binascii.Error as error:
            pytest.fail(f"{plot_id}: image is not valid base64: {error}")

        assert png.startswith(PNG_SIGNATURE), plot_id
        assert len(png) > 1000, plot_id
        assert figure.image_alt, plot_id


def test_document_references_nothing_external(labelled_document, report_builders):
    document = labelled_document
    report = report_builders.parse_report(document)

    assert report.url_attributes, "the report should embed images"
    for value in report.url_attributes:
        assert value.startswith(DATA_URI_PREFIX), value[:80]
    assert re.search(r"(src|href)\s*=\s*[\"']?\s*https?://", document, re.IGNORECASE) is None
    assert "http://" not in document
    assert "https://" not in document
    assert "script" not in report.tags
    assert "link" not in report.tags


def test_document_blocks_scripts_by_policy(labelled_document):
    document = labelled_document

    assert "Content-Security-Policy" in document
    assert "default-src &#39;none&#39;" in document or "default-src 'none'" in document


def test_header_shows_run_and_utc_time(labelled_document, report_builders):
    report = report_builders.parse_report(labelled_document)

    assert "run-20241204T0800Z" in report.text
    assert "created 2024-12-04 09:30:00 UTC" in report.text


def test_creation_time_is_converted_to_utc(report_builders):
    inputs = report_builders.make_inputs(frames=50, windows=40)
    inputs.created_utc = datetime(2024, 12, 4, 10, 30, tzinfo=timezone(timedelta(hours=1)))

    report = report_builders.parse_report(render_report(inputs))

    assert "created 2024-12-04 09:30:00 UTC" in report.text


def test_metrics_table_names_positive_class(labelled_document, labelled_inputs, report_builders):
    document = labelled_document
    report = report_builders.parse_report(document)
    lstm = labelled_inputs.models[0]

    assert "anomaly class (label 1), which is the positive class" in report.text
    for heading in ("threshold (MSE)", "accuracy", "precision", "recall", "F1"):
        assert f"<th>{heading}</th>" in document
    assert f"{lstm.threshold:.6g}" in report.text
    assert f"{lstm.metrics['recall']:.4f}" in report.text
    assert f"{lstm.metrics['f1']:.4f}" in report.text
    assert "mean_k_std (k=3, mean=" in report.text


def test_captures_table_shows_set_aside_reason(labelled_document, report_builders):
    document = labelled_document
    report = report_builders.parse_report(document)

    assert "3 captures: 2 decoded, 1 set aside." in report.text
    assert "not a capture file: no pcap or pcapng magic at byte offset 0" in report.text
    assert document.count('class="set-aside"') == 1


def test_artifact_locations_are_text_only(labelled_document, report_builders):
    report = report_builders.parse_report(labelled_document)

    assert "s3://netae/lake/packets/" in report.text
    assert "file:///srv/netae/models/lstm/run-20241204T0800Z/" in report.text
    assert not any(value.startswith(("s3:", "file:")) for value in report.url_attributes)


def test_protocol_table_counts_frames(labelled_document, labelled_inputs):
    document = labelled_document
    counts = labelled_inputs.packets["protocol"].value_counts()

    for name, count in counts.items():
        assert f"<tr><td>{name}</td><td class=\"number\">{count}</td>" in document


def test_equal_inputs_render_identically(report_builders):
    first = render_report(report_builders.make_inputs(frames=200, windows=60))
    second = render_report(report_builders.make_inputs(frames=200, windows=60))

    assert first == second


def test_package_imports_no_heavy_stack():
    code = (
        "import sys, reports\n"
        "heavy = sorted(name for name in sys.modules if name.split('.')[0] in {'prefect', 'pyspark', 'tensorflow', 'keras'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY_ROOT)

    assert result.stdout.strip() == ""



def test_false_alarm_table_marks_broken_promise(labelled_inputs, report_builders):
    labelled_inputs.models[1].false_alarms = false_alarm_result(0.0387, False)
    document = render_report(labelled_inputs)
    report = report_builders.parse_report(document)

    assert 'id="false-alarms"' in document
    assert document.count("data-false-alarms=") == 1
    assert 'data-false-alarms="conv1d"' in document
    assert "0.0050 of 186 windows" in report.text
    assert ("0.0387 of 155 windows (1 episode, 4 above every validation score, 0.8 expected, "
            "0.260 of later windows above the validation scores' 90th percentile, 0.099 expected, "
            "over 2 times the expected share), above 2 x 0.0100") in report.text


def test_false_alarm_table_without_later_labels(labelled_inputs, report_builders):
    labelled_inputs.models[0].false_alarms = false_alarm_result(None, None)
    document = render_report(labelled_inputs)
    row = re.search(r'<tr data-false-alarms="lstm">(.*?)</tr>', document).group(1)

    assert "0.0050 of 186 windows" in row
    assert row.endswith("<td>n/a</td>")
    assert "above" not in row


def test_report_without_false_alarm_checks_has_no_table(labelled_document):
    assert 'id="false-alarms"' not in labelled_document
