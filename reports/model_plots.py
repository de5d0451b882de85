"""Plots of one model: confusion matrix, reconstruction error over time, training history.

The anomaly class (label 1) is the positive class throughout, and a window counts as
predicted anomalous when its score is strictly greater than the threshold.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from reports.figures import Plot, encode_png, format_utc_time_axis, new_figure, note_plot, to_datetime64
from reports.inputs import ModelSection

CLASS_NAMES = ("normal (0)", "anomalous (1)")

LOG_SCALE_MIN_SPREAD = 1e3
"""Ratio of largest to smallest positive value above which a value axis turns logarithmic."""


def confusion_counts(model: ModelSection) -> np.ndarray | None:
    """Return the [[tn, fp], [fn, tp]] window counts of the model, or None without labels.

    A given ``confusion`` is returned as it is. Otherwise the counts come from the window
    labels and scores, leaving out windows with a non-finite score.
    """
    if model.confusion is not None:
        return np.asarray(model.confusion, dtype=np.int64)
    if model.window_labels is None:
        return None

    scores = np.asarray(model.window_scores, dtype=np.float64)
    labels = np.asarray(model.window_labels)
    finite = np.isfinite(scores)
    predicted = scores[finite] > model.threshold
    actual = labels[finite] == 1
    return np.array(
        [
            [np.sum(~actual & ~predicted), np.sum(~actual & predicted)],
            [np.sum(actual & ~predicted), np.sum(actual & predicted)],
        ],
        dtype=np.int64,
    )


def plot_confusion(model: ModelSection) -> Plot:
    """Draw the 2x2 confusion matrix with counts, or a note when no labels exist."""
    plot_id = f"confusion-{model.kind}"
    caption = (
        f"Confusion matrix of the {model.kind} model over windows. Rows are labels, columns are "
        "predictions, and the anomaly class is the positive class."
    )
    matrix = confusion_counts(model)
    if matrix is None:
        return note_plot(
            plot_id,
            caption,
            f"No labels exist for the {model.kind} model's windows, so there is no confusion matrix. "
            "The metrics table gives the share of windows flagged instead.",
        )
    if model.confusion is None:
        caption += " The counts are computed from the window labels and scores."

    figure = new_figure(4.8, 4.0)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max()), 1))

    # Each cell shows its count and its share of the row, so recall reads off the bottom row.
    row_totals = matrix.sum(axis=1, keepdims=True)
    for row in range(2):
        for column in range(2):
            count = int(matrix[row, column])
            share = count / row_totals[row, 0] if row_totals[row, 0] else 0.0
            dark_cell = count > matrix.max() / 2
            axes.text(
                column,
                row,
                f"{count}\n{share:.1%} of row",
                ha="center",
                va="center",
                color="white" if dark_cell else "black",
                fontsize=11,
            )

    axes.set_xticks([0, 1], CLASS_NAMES)
    axes.set_yticks([0, 1], CLASS_NAMES, rotation=90, va="center")
    axes.set_xlabel("predicted (score > threshold)")
    axes.set_ylabel("label")
    axes.set_title(f"{model.kind} model")

    tn, fp, fn, tp = (int(value) for value in matrix.ravel())
    alt_text = f"Confusion matrix of the {model.kind} model: {tn} true negatives, {fp} false positives, {fn} false negatives, {tp} true positives."
    return Plot(plot_id, caption, alt_text, png_base64=encode_png(figure))


def plot_reconstruction_error(model: ModelSection) -> Plot:
    """Draw each window's score over its start time (UTC), with the threshold as a line."""
    plot_id = f"error-{model.kind}"
    caption = (
        f"Reconstruction error (MSE) of each window of the {model.kind} model over window start "
        f"time (UTC). The dashed line is the threshold {model.threshold:.4g} "
        f"({model.threshold_method}); windows above it are flagged as anomalous."
    )

    starts_ns = np.asarray(model.window_start_ns, dtype=np.int64)
    scores = np.asarray(model.window_scores, dtype=np.float64)
    finite = np.isfinite(scores)
    if not finite.any():
        return note_plot(
            plot_id,
            caption,
            f"The {model.kind} model has no window with a finite score ({scores.size} windows), "
            "so there is no error plot.",
        )

    order = np.argsort(starts_ns[finite], kind="stable")
    times = to_datetime64(starts_ns[finite][order])
    shown_scores = scores[finite][order]
    flagged = int(np.sum(shown_scores > model.threshold))
    caption += f" {flagged} of {shown_scores.size} windows are above it."
    if not finite.all():
        caption += f" {int((~finite).sum())} windows with a non-finite score are not drawn."

    figure = new_figure(9.0, 4.0)
    axes = figure.add_subplot()
    axes.plot(times, shown_scores, color="tab:blue", linewidth=0.8, marker=".", markersize=3, label="window score")
    axes.axhline(model.threshold, color="tab:orange", linestyle="--", linewidth=1.5, label=f"threshold {model.threshold:.4g}")

    if model.window_labels is not None:
        labels = np.asarray(model.window_labels)[finite][order]
        anomalous = labels == 1
        axes.scatter(times[anomalous], shown_scores[anomalous], color="tab:red", s=14, zorder=3, label="labelled anomalous")
        caption += f" Red points are the {int(anomalous.sum())} windows labelled anomalous."

    if _needs_log_scale(np.append(shown_scores, model.threshold)):
        axes.set_yscale("log")
        caption += " The error axis is logarithmic."

    axes.set_ylabel("reconstruction error (MSE)")
    format_utc_time_axis(axes)
    axes.legend(loc="upper left")

    alt_text = (
        f"Reconstruction error of {shown_scores.size} windows of the {model.kind} model over time; "
        f"{flagged} are above the threshold {model.threshold:.4g}."
    )
    return Plot(plot_id, caption, alt_text, png_base64=encode_png(figure))


def plot_training_history(model: ModelSection) -> Plot | None:
    """Draw each Keras history series per epoch, or return None when the model has no history."""
    series = {name: np.asarray(values, dtype=np.float64) for name, values in (model.training_history or {}).items() if len(values)}
    if not series:
        return None

    plot_id = f"history-{model.kind}"
    caption = f"Keras training history of the {model.kind} model, one value per epoch: {', '.join(series)}."

    figure = new_figure(7.0, 3.8)
    axes = figure.add_subplot()
    for name, values in series.items():
        epochs = np.arange(1, values.size + 1)
        axes.plot(epochs, values, marker="o", markersize=3, label=name)

    all_values = np.concatenate(list(series.values()))
    if _needs_log_scale(all_values):
        axes.set_yscale("log")
        caption += " The value axis is logarithmic."

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel("value")
    legend = axes.legend()
    for text in legend.get_texts():
        text.set_parse_math(False)
        text.set_usetex(False)

    finals = ", ".join(f"final {name} {values[-1]:.4g}" for name, values in series.items())
    alt_text = f"Training history of the {model.kind} model: {finals}."
    return Plot(plot_id, caption, alt_text, png_base64=encode_png(figure))


def _needs_log_scale(values: np.ndarray) -> bool:
    """Return True when all finite values are positive and span more than ``LOG_SCALE_MIN_SPREAD``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() <= 0:
        return False
    return bool(finite.max() / finite.min() > LOG_SCALE_MIN_SPREAD)
