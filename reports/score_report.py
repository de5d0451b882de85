"""The analyst's report of an ad hoc score run, as one self-contained HTML document.

It shows the reconstruction error of every window over time with each champion's
threshold. It lists the top flagged windows with their time span, hosts, protocols,
the features reconstructed worst, and their frames with Wireshark's Info column.
Host and host-pair summaries, the traffic plots of the run report, and the
Wireshark round trip (display filter and the exported pcapng) follow.

Like ``reports.render``: plots are base64 PNG data URIs, the template autoescapes
every value, and a Content-Security-Policy meta tag blocks scripts and remote loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timezone
from importlib import resources

import jinja2
import matplotlib
import numpy as np
import pandas as pd

from reports import model_plots, tables, traffic_plots
from reports.inputs import PACKET_COLUMNS_USED
from reports.render import PLOT_RC_PARAMS
from reports.score_inputs import FRAME_COLUMNS, ScoreReportInputs

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "score_report.html.j2"
TOP_HOSTS = 20
TOP_HOST_SCORES = 10
"""Highest-scoring hosts listed per model."""
TOP_WINDOW_VALUES = 5
"""Hosts and protocols listed per flagged window, most frames first."""


@dataclass(frozen=True)
class FlaggedRow:
    """One flagged window as the template shows it; every value is plain text."""

    kind: str
    window_index: int
    score: str
    threshold: str
    ratio: str
    start_utc: str
    end_utc: str
    span_s: str
    frames: str
    hosts: list[str]
    protocols: list[str]
    features: list[str]
    frame_rows: list[dict]


@dataclass(frozen=True)
class HostRow:
    """One host's traffic: frames and bytes sent and received, frames in flagged windows."""

    address: str
    frames_sent: int
    frames_received: int
    bytes_sent: int
    bytes_received: int
    flagged_frames: int


@dataclass(frozen=True)
class HostScoreRow:
    """One of a model's highest-scoring hosts; every value is plain text."""

    kind: str
    address: str
    score: str
    ratio: str
    frames: int
    flagged_frames: int
    top_frame: int


@dataclass(frozen=True)
class PairRow:
    """Traffic from one source address to one destination address."""

    source: str
    destination: str
    frames: int
    bytes: int
    protocols: str


def render_score_report(inputs: ScoreReportInputs) -> str:
    """Return the score report for ``inputs`` as one self-contained HTML document.

    Raises:
        ValueError: when ``created_utc`` is naive or a table lacks a column it needs.
    """
    _validate(inputs)
    logger.info(
        "rendering score report for run %s: %d frames, %d models, %d flagged windows",
        inputs.run_id, inputs.capture_frames, len(inputs.models), len(inputs.flagged),
    )

    with matplotlib.rc_context(PLOT_RC_PARAMS):
        error_plots = [model_plots.plot_reconstruction_error(model) for model in inputs.models]
        traffic = [
            traffic_plots.plot_ip_heatmap(inputs.packets),
            traffic_plots.plot_length_distribution(inputs.packets),
            traffic_plots.plot_packet_rate(inputs.packets),
        ]

    # Host counts cover every flagged frame; the top windows list only a few of them.
    flagged_numbers = set(inputs.flagged_frame_numbers) or {
        number for window in inputs.flagged for number in window.frame_numbers
    }
    context = {
        "title": inputs.title,
        "run_id": inputs.run_id,
        "created_utc": inputs.created_utc.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "capture_key": inputs.capture_key,
        "capture_frames": inputs.capture_frames,
        "window_length": inputs.window_length,
        "window_stride": inputs.window_stride,
        "row_unit": inputs.row_unit,
        "pseudonymized": inputs.pseudonymized,
        "notes": inputs.notes,
        "metric_headings": [heading for _, heading in tables.METRIC_COLUMNS],
        "metrics_rows": [tables.metrics_row(model) for model in inputs.models],
        "error_plots": error_plots,
        "flagged_rows": flagged_rows(inputs),
        "unwindowed_frames": [] if inputs.flagged else frame_rows(inputs, inputs.frames["frame_number"].tolist()),
        "display_filter": inputs.display_filter,
        "export_location": inputs.export_location,
        "exported_frames": inputs.exported_frames,
        "packet_summary": tables.summarize_packets(inputs.packets),
        "host_rows": host_rows(inputs.packets, flagged_numbers, inputs.frames),
        "host_score_rows": host_score_rows(inputs),
        "host_score_totals": {kind: len(table) for kind, table in inputs.host_scores.items()},
        "host_scores_shown": TOP_HOST_SCORES,
        "pair_rows": pair_rows(inputs.packets),
        "traffic_plots": traffic,
        "links": sorted(inputs.links.items()),
    }
    for plot in [*error_plots, *traffic]:
        if plot.note is not None:
            logger.info("score report %s shows a note in place of %s: %s", inputs.run_id, plot.plot_id, plot.note)
    return _environment().get_template(TEMPLATE_NAME).render(context)


def flagged_rows(inputs: ScoreReportInputs) -> list[FlaggedRow]:
    """Format the flagged windows, with the hosts, protocols and frames of each."""
    frames = inputs.frames.set_index("frame_number", drop=False)
    rows = []
    for window in inputs.flagged:
        members = frames.loc[frames.index.intersection(window.frame_numbers)]
        rows.append(
            FlaggedRow(
                kind=window.kind,
                window_index=window.window_index,
                score=f"{window.score:.6g}",
                threshold=f"{window.threshold:.6g}",
                ratio=f"{window.score / window.threshold:.3g}" if window.threshold > 0 else "n/a",
                start_utc=tables.format_utc_ns(window.start_ns),
                end_utc=tables.format_utc_ns(window.end_ns),
                span_s=f"{(window.end_ns - window.start_ns) / 1e9:.6f}",
                frames=_frame_span(window.frame_numbers),
                hosts=_top_counts(pd.concat([members["src_addr"], members["dst_addr"]])),
                protocols=_top_counts(members["protocol"]),
                features=[f"{name} ({error:.4g})" for name, error in window.top_features],
                frame_rows=frame_rows(inputs, window.frame_numbers),
            )
        )
    return rows


def frame_rows(inputs: ScoreReportInputs, frame_numbers: list[int]) -> list[dict]:
    """Return one dict of display strings per frame number, in the order given."""
    frames = inputs.frames.set_index("frame_number", drop=False)
    rows = []
    for number in frame_numbers:
        if number not in frames.index:
            continue
        frame = frames.loc[number]
        rows.append(
            {
                "number": int(number),
                "time": tables.format_utc_ns(int(frame["timestamp_ns"])),
                "source": _text(frame["src_addr"]),
                "destination": _text(frame["dst_addr"]),
                "protocol": _text(frame["protocol"]),
                "length": int(frame["frame_len"]),
                "info": inputs.frame_info.get(int(number), ""),
            }
        )
    return rows


def host_rows(packets: pd.DataFrame, flagged_numbers: set[int], frames: pd.DataFrame) -> list[HostRow]:
    """Summarize the ``TOP_HOSTS`` busiest addresses (frames sent plus received).

    ``flagged_frames`` counts the frames in flagged windows where the address is
    the source or the destination.
    """
    if packets.empty:
        return []
    lengths = pd.to_numeric(packets["frame_len"], errors="coerce").fillna(0).astype(np.int64)
    sent = pd.DataFrame({"address": packets["src_addr"], "bytes": lengths}).dropna(subset=["address"])
    received = pd.DataFrame({"address": packets["dst_addr"], "bytes": lengths}).dropna(subset=["address"])
    sent_stats = sent.groupby("address")["bytes"].agg(["count", "sum"])
    received_stats = received.groupby("address")["bytes"].agg(["count", "sum"])
    table = sent_stats.join(received_stats, how="outer", lsuffix="_sent", rsuffix="_received").fillna(0)
    table["total"] = table["count_sent"] + table["count_received"]
    table = table.reset_index().sort_values(["total", "address"], ascending=[False, True]).head(TOP_HOSTS)

    # The packet sample covers every frame the host table counts; ``frames`` holds only the listed ones.
    source = packets if "frame_number" in packets.columns else frames
    flagged = source[source["frame_number"].isin(flagged_numbers)]
    flagged_counts = pd.concat([flagged["src_addr"], flagged["dst_addr"]]).value_counts()
    return [
        HostRow(
            address=str(row.address),
            frames_sent=int(row.count_sent),
            frames_received=int(row.count_received),
            bytes_sent=int(row.sum_sent),
            bytes_received=int(row.sum_received),
            flagged_frames=int(flagged_counts.get(row.address, 0)),
        )
        for row in table.itertuples()
    ]


def host_score_rows(inputs: ScoreReportInputs) -> list[HostScoreRow]:
    """List each model's ``TOP_HOST_SCORES`` highest-scoring hosts with their score as a multiple of the model's threshold."""
    thresholds = {model.kind: model.threshold for model in inputs.models}
    rows = []
    for kind, table in inputs.host_scores.items():
        threshold = thresholds.get(kind)
        for row in table.head(TOP_HOST_SCORES).itertuples(index=False):
            ratio = f"{row.score / threshold:.2f}" if threshold else "n/a"
            rows.append(HostScoreRow(kind, str(row.address), f"{row.score:.6g}", ratio, int(row.frames), int(row.flagged_frames),
                                     int(row.top_frame)))
    return rows


def pair_rows(packets: pd.DataFrame) -> list[PairRow]:
    """Summarize the ``TOP_HOSTS`` busiest (source, destination) pairs, with their top protocols."""
    pairs = packets.dropna(subset=["src_addr", "dst_addr"])
    if pairs.empty:
        return []
    lengths = pd.to_numeric(pairs["frame_len"], errors="coerce").fillna(0).astype(np.int64)
    grouped = pairs.assign(bytes=lengths).groupby(["src_addr", "dst_addr"])
    table = grouped.agg(frames=("bytes", "size"), bytes=("bytes", "sum")).reset_index()
    table = table.sort_values(["frames", "src_addr", "dst_addr"], ascending=[False, True, True]).head(TOP_HOSTS)
    rows = []
    for row in table.itertuples():
        protocols = grouped.get_group((row.src_addr, row.dst_addr))["protocol"]
        rows.append(PairRow(str(row.src_addr), str(row.dst_addr), int(row.frames), int(row.bytes), ", ".join(_top_counts(protocols, 3))))
    return rows


def _validate(inputs: ScoreReportInputs) -> None:
    if inputs.created_utc.tzinfo is None or inputs.created_utc.utcoffset() is None:
        raise ValueError(
            f"created_utc must be timezone-aware, got naive {inputs.created_utc.isoformat()}; "
            "pass an aware time such as datetime.now(timezone.utc)"
        )
    for name, frame, columns in (("packets", inputs.packets, PACKET_COLUMNS_USED), ("frames", inputs.frames, FRAME_COLUMNS)):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{name} is missing column(s) {missing}; the score report needs {list(columns)}")


def _top_counts(values: pd.Series, count: int = TOP_WINDOW_VALUES) -> list[str]:
    counts = values.dropna().astype(str).value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:count]
    return [f"{value} ({frames})" for value, frames in ordered]


def _frame_span(numbers: list[int]) -> str:
    if not numbers:
        return ""
    return f"{min(numbers)}-{max(numbers)} ({len(numbers)} frames)"


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA else str(value)


def _environment() -> jinja2.Environment:
    template_text = resources.files("reports").joinpath("templates", TEMPLATE_NAME).read_text(encoding="utf-8")
    return jinja2.Environment(
        loader=jinja2.DictLoader({TEMPLATE_NAME: template_text}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )

