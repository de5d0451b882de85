"""Plots of the packet table: IP-to-IP heatmap, frame lengths and packet rate.

Addresses come from captures, so tick labels are drawn as literal text (no mathtext, no
TeX). A "$" in a crafted field then prints as itself instead of being parsed as
mathtext, which would also raise on an unbalanced expression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from reports.figures import Plot, encode_png, format_utc_time_axis, new_figure, note_plot, to_datetime64

DEFAULT_TOP_ADDRESSES = 15
MAX_LENGTH_BINS = 60
RATE_BINS = 100

MAX_TICK_LABEL_CHARS = 45
"""Maximum tick label length drawn in full, in characters. An IPv6 address with an
embedded IPv4 address, the longest address form, has 45."""


def plot_ip_heatmap(packets: pd.DataFrame, top_addresses: int = DEFAULT_TOP_ADDRESSES) -> Plot:
    """Draw packet counts between the busiest source and destination addresses.

    Args:
        packets: Packet table with ``src_addr`` and ``dst_addr``.
        top_addresses: Number of source addresses (rows) and of destination addresses
            (columns) shown, each picked by its own packet count.

    Returns:
        The ``ip-heatmap`` plot; its colour scale is logarithmic and cells without
        packets are blank. A note replaces it when no frame has both addresses.
    """
    plot_id = "ip-heatmap"
    pairs = packets[["src_addr", "dst_addr"]].dropna().astype(str)
    without_addresses = len(packets) - len(pairs)
    dropped_note = (
        f" {without_addresses} frames without a source or destination address are not counted."
        if without_addresses
        else ""
    )

    if pairs.empty:
        caption = "Packet counts between source and destination addresses." + dropped_note
        return note_plot(plot_id, caption, "No frame has both a source and a destination address, so there is no heatmap.")

    sources = _top_values(pairs["src_addr"], top_addresses)
    destinations = _top_values(pairs["dst_addr"], top_addresses)
    caption = (
        f"Packets from each of the {len(sources)} busiest source addresses (rows) to each of the "
        f"{len(destinations)} busiest destination addresses (columns), at most {top_addresses} "
        "each. Colour is on a log scale and blank cells have no packets." + dropped_note
    )
    pairs_in_grid = pairs[pairs["src_addr"].isin(sources) & pairs["dst_addr"].isin(destinations)]
    counts = (
        pd.crosstab(pairs_in_grid["src_addr"], pairs_in_grid["dst_addr"])
        .reindex(index=sources, columns=destinations, fill_value=0)
        .to_numpy()
    )
    caption += f" The shown pairs carry {int(counts.sum())} of {len(pairs)} frames with addresses."

    figure = new_figure(4.0 + 0.4 * len(destinations), 3.0 + 0.3 * len(sources))
    axes = figure.add_subplot()

    # LogNorm needs vmax > vmin, so a matrix of single packets still gets a range.
    norm = LogNorm(vmin=1, vmax=max(int(counts.max()), 2))
    image = axes.imshow(np.ma.masked_equal(counts, 0), norm=norm, cmap="viridis", aspect="auto")

    axes.set_xticks(
        range(len(destinations)),
        [_tick_label(address) for address in destinations],
        rotation=60,
        ha="right",
        parse_math=False,
        usetex=False,
    )
    axes.set_yticks(range(len(sources)), [_tick_label(address) for address in sources], parse_math=False, usetex=False)
    axes.set_xlabel("destination address")
    axes.set_ylabel("source address")
    figure.colorbar(image, ax=axes, label="packets (log scale)")

    busiest = np.unravel_index(int(np.argmax(counts)), counts.shape)
    alt_text = (
        f"Heatmap of packet counts between {len(sources)} source and {len(destinations)} "
        f"destination addresses. Busiest pair: {sources[busiest[0]]} to "
        f"{destinations[busiest[1]]}, {int(counts[busiest])} packets."
    )
    return Plot(plot_id, caption, alt_text, png_base64=encode_png(figure))


def plot_length_distribution(packets: pd.DataFrame) -> Plot:
    """Draw the histogram of frame lengths on the wire (bytes), counts on a log scale."""
    plot_id = "length-distribution"
    lengths = pd.to_numeric(packets["frame_len"], errors="coerce").dropna().to_numpy(dtype=np.int64)
    caption = "Frame length on the wire in bytes; the count axis is logarithmic."

    if lengths.size == 0:
        return note_plot(plot_id, caption, "The packet table has no frames, so there is no length distribution.")

    median = float(np.median(lengths))
    caption += f" {lengths.size} frames, median {median:g} bytes, maximum {int(lengths.max())} bytes."

    # Integer edges and width give every bin the same number of possible lengths, so no
    # bin looks taller only because it covers one more byte value.
    low, high = int(lengths.min()), int(lengths.max()) + 1
    bin_width = max(1, int(np.ceil((high - low) / MAX_LENGTH_BINS)))
    edges = np.arange(low, high + bin_width, bin_width)

    figure = new_figure(8.0, 4.0)
    axes = figure.add_subplot()
    axes.hist(lengths, bins=edges, log=True, color="tab:blue")
    axes.axvline(median, color="tab:orange", linestyle="--", label=f"median {median:g} bytes")
    axes.set_xlabel("frame length (bytes)")
    axes.set_ylabel("frames (log scale)")
    axes.legend()

    alt_text = (
        f"Histogram of {lengths.size} frame lengths from {int(lengths.min())} to "
        f"{int(lengths.max())} bytes, median {median:g} bytes."
    )
    return Plot(plot_id, caption, alt_text, png_base64=encode_png(figure))


def plot_packet_rate(packets: pd.DataFrame) -> Plot:
    """Draw packets per second over capture time (UTC) in ``RATE_BINS`` equal time bins."""
    plot_id = "packet-rate"
    timestamps_ns = pd.to_numeric(packets["timestamp_ns"], errors="coerce").dropna().to_numpy(dtype=np.int64)
    caption = "Packets per second over capture time (UTC), all captures together."

    if timestamps_ns.size == 0:
        return note_plot(plot_id, caption, "The packet table has no frames, so there is no packet rate to show.")

    first_ns, last_ns = int(timestamps_ns.min()), int(timestamps_ns.max())
    if first_ns == last_ns:
        return note_plot(
            plot_id,
            caption,
            f"All {timestamps_ns.size} frames have the same timestamp, so there is no rate over time.",
        )

    # Edges are computed with Python integers, because float64 cannot hold epoch
    # nanoseconds exactly. The last edge is one past the last frame, so it is counted.
    span_ns = last_ns - first_ns
    edges_ns = np.array([first_ns + span_ns * i // RATE_BINS for i in range(RATE_BINS + 1)], dtype=np.int64)
    edges_ns[-1] = last_ns + 1
    counts, _ = np.histogram(timestamps_ns, bins=edges_ns)
    widths_s = np.diff(edges_ns) / 1e9
    rates = counts / widths_s

    figure = new_figure(9.0, 3.5)
    axes = figure.add_subplot()
    axes.stairs(rates, to_datetime64(edges_ns), color="tab:blue", linewidth=1.2)
    axes.set_ylabel("packets per second")
    format_utc_time_axis(axes)

    span_s = span_ns / 1e9
    caption += f" {timestamps_ns.size} frames over {span_s:.3f} s, bins of {span_s / RATE_BINS:.3g} s."
    alt_text = f"Packet rate over {span_s:.3f} s, peak {rates.max():.3g} packets per second."
    return Plot(plot_id, caption, alt_text, png_base64=encode_png(figure))


def _tick_label(address: str) -> str:
    """Shorten an address longer than ``MAX_TICK_LABEL_CHARS`` with an ellipsis, keeping its start."""
    if len(address) <= MAX_TICK_LABEL_CHARS:
        return address
    return address[: MAX_TICK_LABEL_CHARS - 1] + "\u2026"


def _top_values(values: pd.Series, count: int) -> list[str]:
    """Return the ``count`` most frequent values, ties broken by value so the order is stable."""
    frequencies = values.value_counts().rename("n").reset_index()
    frequencies.columns = ["value", "n"]
    frequencies = frequencies.sort_values(["n", "value"], ascending=[False, True])
    return frequencies["value"].head(count).tolist()
