"""Seeded synthetic report inputs, built without Spark or TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from reports import CaptureEntry, ModelSection, ReportInputs, render_report

START_NS = 1_733_299_200 * 1_000_000_000  # 2024-12-04T08:00:00Z
WINDOW_STRIDE_NS = 2_000_000_000


def make_packets(frames: int, seed: int = 7, hosts: int = 30) -> pd.DataFrame:
    """Build a packet table with skewed address use, typical frame sizes and 10 minutes of time."""
    rng = np.random.default_rng(seed)
    addresses = np.array([f"10.0.0.{i}" for i in range(1, hosts - 1)] + ["2001:db8::1", "2001:db8::2"])
    weights = 1.0 / np.arange(1, addresses.size + 1)
    weights /= weights.sum()

    lengths = rng.choice([60, 66, 1514], size=frames, p=[0.4, 0.3, 0.3])
    lengths = np.where(rng.random(frames) < 0.2, rng.integers(60, 1515, size=frames), lengths)

    return pd.DataFrame(
        {
            "src_addr": rng.choice(addresses, size=frames, p=weights),
            "dst_addr": rng.choice(addresses, size=frames, p=weights[::-1]),
            "frame_len": lengths.astype(np.int32),
            "timestamp_ns": np.sort(START_NS + rng.integers(0, 600_000_000_000, size=frames)),
            "protocol": rng.choice(["TCP", "UDP", "DNS", "TLSv1.3", "ARP"], size=frames),
        }
    )


def make_model(kind: str, windows: int, labelled: bool, seed: int = 11, history: bool = True) -> ModelSection:
    """Build a model section whose planted anomalous windows (every 20th) score about 10x higher."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(windows) % 20 == 19).astype(np.int8)
    scores = rng.lognormal(mean=np.log(0.01), sigma=0.3, size=windows)
    scores = np.where(labels == 1, scores * 10, scores)

    normal = scores[labels == 0]
    mean, std = float(normal.mean()) if normal.size else 0.0, float(normal.std()) if normal.size else 0.0
    threshold = mean + 3.0 * std if normal.size else 0.05
    predicted = scores > threshold

    if labelled:
        tp = int(np.sum(predicted & (labels == 1)))
        fp = int(np.sum(predicted & (labels == 0)))
        fn = int(np.sum(~predicted & (labels == 1)))
        tn = int(np.sum(~predicted & (labels == 0)))
        confusion = [[tn, fp], [fn, tp]]
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        metrics = {
            "accuracy": (tp + tn) / windows if windows else float("nan"),
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if tp else 0.0,
        }
    else:
        confusion = None
        metrics = {"flagged_share": float(predicted.mean()) if windows else 0.0}

    return ModelSection(
        kind=kind,
        version="run-20241204T0800Z",
        threshold=threshold,
        threshold_method="mean_k_std",
        threshold_params={"k": 3.0, "mean": mean, "std": std},
        window_start_ns=START_NS + np.arange(windows, dtype=np.int64) * WINDOW_STRIDE_NS,
        window_scores=scores,
        window_labels=labels if labelled else None,
        metrics=metrics,
        confusion=confusion,
        training_history={"loss": [0.2, 0.08, 0.04, 0.03], "val_loss": [0.22, 0.1, 0.05, 0.045]} if history else None,
    )


def make_inputs(frames: int = 2000, windows: int = 300, labelled: bool = True) -> ReportInputs:
    """Build a full run: three captures (one set aside), packets, both model kinds and links."""
    return ReportInputs(
        title="netae run report",
        run_id="run-20241204T0800Z",
        created_utc=datetime(2024, 12, 4, 9, 30, tzinfo=timezone.utc),
        captures=[
            CaptureEntry("office-lan", "captures/office-lan.pcapng", 1200, "decoded", None),
            CaptureEntry("dmz", "captures/dmz.pcap", 800, "decoded", None),
            CaptureEntry("broken", "captures/broken.pcap", 0, "set aside", "not a capture file: no pcap or pcapng magic at byte offset 0"),
        ],
        packets=make_packets(frames),
        models=[make_model("lstm", windows, labelled, seed=11), make_model("conv1d", windows, labelled, seed=12)],
        links={
            "lstm model": "file:///srv/netae/models/lstm/run-20241204T0800Z/",
            "packet table": "s3://netae/lake/packets/",
            "validations": "s3://netae/validations/run-20241204T0800Z.json",
        },
    )


@pytest.fixture
def labelled_inputs() -> ReportInputs:
    return make_inputs(labelled=True)


@pytest.fixture(scope="session")
def labelled_document() -> str:
    """The default labelled report, rendered once for the tests that only read it."""
    return render_report(make_inputs(labelled=True))


@pytest.fixture
def unlabelled_inputs() -> ReportInputs:
    return make_inputs(labelled=False)


@dataclass
class ParsedFigure:
    """One <figure data-plot> of a rendered report, with its text unescaped by the parser."""

    plot_id: str
    image_src: str | None = None
    image_alt: str | None = None
    note: str = ""
    caption: str = ""


@dataclass
class ParsedReport:
    figures: dict[str, ParsedFigure] = field(default_factory=dict)
    figure_order: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    url_attributes: list[str] = field(default_factory=list)
    text: str = ""


_VOID_ELEMENTS = {"img", "meta", "br", "hr", "link", "input"}


class _ReportParser(HTMLParser):
    """Collect figures, tag names, src/href values and visible text of a report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.report = ParsedReport()
        self._figure: ParsedFigure | None = None
        self._open: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.report.tags.append(tag)
        if tag not in _VOID_ELEMENTS:
            self._open.append(tag)
        for name in ("src", "href"):
            if attributes.get(name) is not None:
                self.report.url_attributes.append(attributes[name])

        if tag == "figure" and "data-plot" in attributes:
            self._figure = ParsedFigure(plot_id=attributes["data-plot"])
            self.report.figures[self._figure.plot_id] = self._figure
            self.report.figure_order.append(self._figure.plot_id)
        elif tag == "img" and self._figure is not None:
            self._figure.image_src = attributes.get("src")
            self._figure.image_alt = attributes.get("alt")

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()
        if tag == "figure":
            self._figure = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._figure is None or not self._open:
            return
        if self._open[-1] == "p":
            self._figure.note += data
        elif self._open[-1] == "figcaption":
            self._figure.caption += data

    def close(self) -> None:
        super().close()
        self.report.text = "".join(self._text)


def parse_report(document: str) -> ParsedReport:
    parser = _ReportParser()
    parser.feed(document)
    parser.close()
    return parser.report


@pytest.fixture(scope="session")
def report_builders() -> SimpleNamespace:
    """The builders above, for tests that need other sizes or labels than the default inputs."""
    return SimpleNamespace(
        make_inputs=make_inputs,
        make_model=make_model,
        make_packets=make_packets,
        parse_report=parse_report,
    )
