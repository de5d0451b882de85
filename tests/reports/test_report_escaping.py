"""Strings from captures and storage reach the document only escaped."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from reports import CaptureEntry, render_report, traffic_plots

MARKUP = "<script>alert(1)</script>"
ESCAPED_MARKUP = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _hostile_inputs(report_builders):
    """Put the markup in every field that comes from packets or storage."""
    inputs = report_builders.make_inputs(frames=400, windows=60)
    inputs.captures.append(CaptureEntry(MARKUP, f"captures/{MARKUP}.pcap", 0, "set aside", f"bad frame {MARKUP}"))

    # The hostile address gets the most packets, so it becomes the busiest pair and
    # appears in the heatmap's alt text.
    packets = inputs.packets.copy()
    packets.loc[: len(packets) // 2, "src_addr"] = MARKUP
    packets.loc[: len(packets) // 2, "dst_addr"] = MARKUP
    packets.loc[:10, "protocol"] = MARKUP
    inputs.packets = packets

    inputs.links[MARKUP] = f"s3://netae/{MARKUP}"
    inputs.run_id = MARKUP
    inputs.title = MARKUP
    inputs.models[0].version = MARKUP
    inputs.models[0].threshold_method = MARKUP
    return inputs


@pytest.fixture(scope="module")
def hostile_document(report_builders) -> str:
    return render_report(_hostile_inputs(report_builders))


def test_markup_appears_only_escaped(hostile_document):
    document = hostile_document

    assert MARKUP not in document
    assert "<script" not in document.lower()
    assert ESCAPED_MARKUP in document


def test_markup_in_every_field_is_kept_as_text(hostile_document, report_builders):
    report = report_builders.parse_report(hostile_document)

    assert "script" not in report.tags
    assert f"bad frame {MARKUP}" in report.text
    assert f"captures/{MARKUP}.pcap" in report.text
    assert f"s3://netae/{MARKUP}" in report.text
    assert report.text.count(MARKUP) >= 8


def test_heatmap_alt_text_is_escaped(hostile_document, report_builders):
    document = hostile_document
    report = report_builders.parse_report(document)
    alt_text = report.figures["ip-heatmap"].image_alt

    assert f"Busiest pair: {MARKUP} to {MARKUP}" in alt_text
    assert f"Busiest pair: {ESCAPED_MARKUP} to {ESCAPED_MARKUP}" in document


def test_attribute_quotes_are_escaped(report_builders):
    inputs = report_builders.make_inputs(frames=300, windows=40)
    quoted = '" onerror="alert(1)'
    packets = inputs.packets.copy()
    packets["src_addr"] = quoted
    inputs.packets = packets

    document = render_report(inputs)
    report = report_builders.parse_report(document)

    assert 'onerror="alert' not in document
    assert quoted in report.figures["ip-heatmap"].image_alt


def test_dollar_signs_in_addresses_do_not_break_plots(report_builders):
    inputs = report_builders.make_inputs(frames=300, windows=40)
    packets = inputs.packets.copy()
    packets.loc[:100, "src_addr"] = "$\\frac{1}{$"
    packets.loc[:100, "dst_addr"] = "host$a$b"
    inputs.packets = packets

    report = report_builders.parse_report(render_report(inputs))

    assert report.figures["ip-heatmap"].image_src is not None
    assert "$\\frac{1}{$" in report.figures["ip-heatmap"].image_alt


def test_null_addresses_are_counted_not_drawn(report_builders):
    inputs = report_builders.make_inputs(frames=300, windows=40)
    packets = inputs.packets.copy()
    packets.loc[:9, "src_addr"] = None
    packets.loc[5:19, "dst_addr"] = np.nan
    inputs.packets = pd.DataFrame(packets)

    report = report_builders.parse_report(render_report(inputs))

    assert "20 frames without a source or destination address are not counted." in report.figures["ip-heatmap"].caption


def test_caller_usetex_setting_is_ignored(report_builders):
    inputs = report_builders.make_inputs(frames=200, windows=40)
    packets = inputs.packets.copy()
    packets.loc[:50, "src_addr"] = "100% of $HOME_dir"
    inputs.packets = packets

    with matplotlib.rc_context({"text.usetex": True}):
        report = report_builders.parse_report(render_report(inputs))
        assert matplotlib.rcParams["text.usetex"] is True

    assert report.figures["ip-heatmap"].image_src is not None
    assert report.figures["history-lstm"].image_src is not None


def test_overlong_address_is_shortened_in_ticks():
    address = "x" * 300

    label = traffic_plots._tick_label(address)

    assert len(label) == traffic_plots.MAX_TICK_LABEL_CHARS
    assert label.endswith("\u2026")
    assert traffic_plots._tick_label("2001:db8::ffff:192.0.2.128") == "2001:db8::ffff:192.0.2.128"
