"""Figure creation and PNG embedding, without pyplot.

Every figure is a ``matplotlib.figure.Figure`` with its own Agg canvas. Nothing is
registered with pyplot, so no figure outlives its plot function and the caller's
backend stays as it was.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import timezone

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PNG_DPI = 100


@dataclass(frozen=True)
class Plot:
    """One plot of the report, or the note that replaces it.

    Attributes:
        plot_id: Value of the figure's ``data-plot`` attribute, e.g. "error-lstm".
        caption: Caption as plain text, which the template escapes.
        alt_text: Alternative text of the image as plain text, escaped likewise.
        png_base64: Base64 of the PNG image, or None when the note replaces it.
        note: Why there is no image, or None when there is one.
    """

    plot_id: str
    caption: str
    alt_text: str
    png_base64: str | None = None
    note: str | None = None


def new_figure(width_in: float, height_in: float) -> Figure:
    """Create a figure of the given size in inches, at ``PNG_DPI``, with its own Agg canvas."""
    figure = Figure(figsize=(width_in, height_in), dpi=PNG_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def encode_png(figure: Figure) -> str:
    """Render the figure as PNG and return it base64-encoded (ASCII)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def note_plot(plot_id: str, caption: str, note: str) -> Plot:
    """Build the Plot that shows ``note`` in place of an image."""
    return Plot(plot_id=plot_id, caption=caption, alt_text=note, note=note)


def to_datetime64(timestamps_ns: np.ndarray) -> np.ndarray:
    """Convert int64 ns since the Unix epoch to numpy datetime64[ns], which matplotlib reads as UTC."""
    return np.asarray(timestamps_ns, dtype=np.int64).astype("datetime64[ns]")


def format_utc_time_axis(axes: Axes) -> None:
    """Put UTC date ticks on the x axis, whatever the caller's ``timezone`` setting."""
    locator = mdates.AutoDateLocator(tz=timezone.utc)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=timezone.utc))
    axes.set_xlabel("time (UTC)")
