"""Assemble the report: validate the inputs, draw the plots, fill the HTML template.

The document is self-contained: plots are base64 PNG data URIs, the style sheet is
inline, and it has no script and no external URL. A Content-Security-Policy meta tag
blocks scripts and remote loads as a second line of defence behind escaping.
"""

from __future__ import annotations

import logging
from datetime import timezone
from importlib import resources

import jinja2
import matplotlib

from reports import model_plots, tables, traffic_plots
from reports.figures import Plot, note_plot
from reports.inputs import ReportInputs, validate_inputs

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "report.html.j2"

PLOT_RC_PARAMS = {"text.usetex": False}
"""matplotlib settings forced while plotting. Labels from captures must never reach TeX,
and TeX may not be installed at all."""


def render_report(inputs: ReportInputs, *, top_addresses: int = traffic_plots.DEFAULT_TOP_ADDRESSES) -> str:
    """Return the report for ``inputs`` as one self-contained HTML document.

    Args:
        inputs: Run, captures, packets and models to report on.
        top_addresses: Source and destination addresses shown in the IP heatmap,
            each at least 1.

    Returns:
        The HTML document. Every string from the inputs is escaped and plots are
        embedded PNGs. An empty input (no packets, no windows, a missing model kind)
        gets a note in place of its plot.

    Raises:
        ValueError: When an input breaks its documented contract or
            ``top_addresses`` is below 1.
    """
    if top_addresses < 1:
        raise ValueError(f"top_addresses must be at least 1, got {top_addresses}")
    validate_inputs(inputs)

    logger.info(
        "rendering report for run %s: %d captures, %d frames, %d models",
        inputs.run_id,
        len(inputs.captures),
        len(inputs.packets),
        len(inputs.models),
    )

    missing_kinds = tables.missing_model_kinds(inputs.models)

    # NOTE: rc_context changes matplotlib's process-wide settings until it exits, so
    # PLOT_RC_PARAMS also apply to any thread that plots at the same time.
    with matplotlib.rc_context(PLOT_RC_PARAMS):
        traffic = [
            traffic_plots.plot_ip_heatmap(inputs.packets, top_addresses),
            traffic_plots.plot_length_distribution(inputs.packets),
            traffic_plots.plot_packet_rate(inputs.packets),
        ]
        model_groups = _model_plot_groups(inputs, missing_kinds)

    context = {
        "title": inputs.title,
        "run_id": inputs.run_id,
        "created_utc": inputs.created_utc.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "metric_headings": [heading for _, heading in tables.METRIC_COLUMNS],
        "metrics_rows": [tables.metrics_row(model) for model in inputs.models],
        "false_alarm_rows": [row for row in map(tables.false_alarm_row, inputs.models) if row is not None],
        "promise_tolerance": tables.promise_tolerance(inputs.models),
        "missing_kinds": missing_kinds,
        "captures": inputs.captures,
        "capture_counts": tables.capture_counts(inputs.captures),
        "packet_summary": tables.summarize_packets(inputs.packets),
        "traffic_plots": traffic,
        "model_plot_groups": model_groups,
        "links": sorted(inputs.links.items()),
    }

    notes = [plot for plot in traffic if plot.note is not None]
    notes += [plot for _, plots in model_groups for plot in plots if plot.note is not None]
    for plot in notes:
        logger.info("report for run %s shows a note in place of %s: %s", inputs.run_id, plot.plot_id, plot.note)

    return _environment().get_template(TEMPLATE_NAME).render(context)


def _model_plot_groups(inputs: ReportInputs, missing_kinds: list[str]) -> list[tuple[str, list[Plot]]]:
    """Return (model kind, plots) per model, with notes standing in for missing kinds."""
    groups: list[tuple[str, list[Plot]]] = []
    for model in inputs.models:
        plots = [model_plots.plot_confusion(model), model_plots.plot_reconstruction_error(model)]
        history = model_plots.plot_training_history(model)
        if history is not None:
            plots.append(history)
        groups.append((model.kind, plots))

    for kind in missing_kinds:
        note = f"This run has no {kind} model, so there is nothing to plot for it."
        groups.append(
            (
                kind,
                [
                    note_plot(f"confusion-{kind}", f"Confusion matrix of the {kind} model.", note),
                    note_plot(f"error-{kind}", f"Reconstruction error of the {kind} model over time.", note),
                ],
            )
        )
    return groups


def _environment() -> jinja2.Environment:
    template_text = resources.files("reports").joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")
    return jinja2.Environment(
        loader=jinja2.DictLoader({TEMPLATE_NAME: template_text}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
