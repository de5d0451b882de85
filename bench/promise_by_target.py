"""Measure each threshold method's false-alarm rates over a range of targets, on the labelled mixes.

``bench/evaluate_mixes.py`` fixes one target (0.01, and k = 3 for
``mean_k_std``). A later-period rate above the promise at that one target
cannot tell two causes apart. If only the tail of the benign scores moved, or
the calibration set is too small to estimate a tail that far out, larger targets
keep their promise. If the bulk of the later benign scores moved, larger targets
miss too. This script trains the Conv1D autoencoder once
per remapped mix, with the settings of docs/evaluation.md, and fits every
threshold method at several targets on the same normal validation scores. It
prints Markdown tables. One table per method gives the later-period rate of
each mix at each target (each k for ``mean_k_std``), marked where it is above
twice the promise. The last table, "Every point of the sweep", gives per mix,
method and target the promised rate, the same-period and later-period rates of
``models.threshold_checks.false_alarm_check``, the later rate as a multiple of
the promise, and the F1 on the evaluation windows.

It reads the test labels, so it explains a result and sets nothing. Run from the
repository root::

    .venv/bin/python bench/promise_by_target.py
    .venv/bin/python bench/promise_by_target.py --training-window-stride 3
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate_mixes as mixes  # noqa: E402

from models.metrics import binary_metrics  # noqa: E402
from models.threshold_checks import false_alarm_check  # noqa: E402
from models.thresholds import calibration_scores, fit_threshold  # noqa: E402

logger = logging.getLogger("promise_by_target")

KIND = "conv1d"
TARGET_RATES = (0.005, 0.01, 0.02, 0.05, 0.1)
"""Target false-alarm rates of ``quantile`` and ``pot``."""
K_VALUES = (4.0, 3.0, 2.0)
"""Values of k for ``mean_k_std``. By Cantelli's bound 1 / (1 + k^2) they promise 0.059, 0.100 and 0.200."""


def method_options(target_rates: tuple[float, ...], k_values: tuple[float, ...]) -> list[tuple[str, str, dict]]:
    """Return (method, parameter as shown, options of ``fit_threshold``) for every point of the sweep."""
    points = [("mean_k_std", f"k = {k:g}", {"k": k}) for k in k_values]
    for method in ("quantile", "pot"):
        points += [(method, f"target {rate:g}", {"target_false_alarm_rate": rate}) for rate in target_rates]
    return points


def sweep(metadata: pd.DataFrame, scores: np.ndarray, settings: mixes.Settings,
          points: list[tuple[str, str, dict]]) -> list[dict]:
    """Fit each point's threshold on the normal validation scores and measure it.

    Returns one row per point with the threshold, the promise, both periods'
    rates (None where a period has no windows) and the F1 on the evaluation
    windows.
    """
    labels = mixes.window_labels(metadata)
    evaluation = ((metadata["split"] == "test") | (labels == 1)).to_numpy()
    calibration = calibration_scores(metadata, scores)
    rows = []
    for method, parameter, options in points:
        fit = {"k": settings.threshold_k, "target_false_alarm_rate": settings.target_false_alarm_rate, **options}
        threshold = fit_threshold(method, calibration, pot_initial_quantile=settings.pot_initial_quantile, quiet=True, **fit)
        check = false_alarm_check(metadata, scores, threshold)
        rows.append({
            "method": method, "parameter": parameter, "threshold": threshold.value,
            "promised": check["promised_rate"], "same": check["same_period"]["rate"],
            "later": check["later_period"]["rate"], "later_windows": check["later_period"]["windows"],
            "f1": binary_metrics(labels[evaluation], threshold.flag(scores)[evaluation])["f1"],
        })
    return rows


def rate_cell(rate: float | None, promised: float) -> str:
    """Return the rate as shown in the tables, marked when it breaks the promise."""
    if rate is None:
        return "n/a"
    return f"{rate:.3f}{mixes.above_promise_mark(rate, promised)}"


def later_by_parameter(results: dict[str, list[dict]]) -> str:
    """Return the Markdown table of later-period rates: one row per mix and method, one column per parameter."""
    lines = []
    for method in dict.fromkeys(row["method"] for rows in results.values() for row in rows):
        parameters = list(dict.fromkeys(row["parameter"] for rows in results.values() for row in rows if row["method"] == method))
        lines += [f"### Later-period rate by {'k' if method == 'mean_k_std' else 'target'} ({method})", "",
                  f"| mix (remapped) | method | {' | '.join(parameters)} |", "| --- | --- |" + " --- |" * len(parameters)]
        for mix, rows in results.items():
            cells = {row["parameter"]: rate_cell(row["later"], row["promised"]) for row in rows if row["method"] == method}
            lines.append(f"| {mix} | {method} | " + " | ".join(cells.get(parameter, "") for parameter in parameters) + " |")
        lines.append("")
    return "\n".join(lines)


def table(results: dict[str, list[dict]]) -> str:
    """Return the Markdown table of every mix's sweep, one row per mix, method and parameter."""
    lines = [
        "### Every point of the sweep",
        "",
        "| mix (remapped) | method | parameter | promised rate | same period (cross-fitted) | later period "
        "| later / promised | F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mix, rows in results.items():
        for row in rows:
            ratio = "n/a" if row["later"] is None else f"{row['later'] / row['promised']:.1f}"
            lines.append(
                f"| {mix} | {row['method']} | {row['parameter']} | {row['promised']:.3f} | {rate_cell(row['same'], row['promised'])} "
                f"| {rate_cell(row['later'], row['promised'])} of {row['later_windows']} | {ratio} | {row['f1']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the sweep on every chosen mix and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captures", type=Path, default=mixes.REPO_ROOT.parent / "shared" / "captures",
                        help="folder of the public captures (default: ../shared/captures, relative to the repository root)")
    parser.add_argument("--mixes", nargs="+", default=None, choices=[mix.name for mix in mixes.MIXES + mixes.EXTRA_MIXES],
                        help="names of the mixes to run (default: the three headline mixes)")
    parser.add_argument("--training-window-stride", type=int, default=None,
                        help="frames between training window starts (default: the window stride, 4)")
    parser.add_argument("--seed", type=int, default=mixes.Settings.seed, help=f"seed of the model (default: {mixes.Settings.seed})")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this Markdown file")
    args = parser.parse_args(argv)
    mixes.start_run(parser, args.captures, args.training_window_stride, mixes.HEADLINE_WINDOW_STRIDE)
    settings = mixes.Settings(window_stride=mixes.HEADLINE_WINDOW_STRIDE, training_window_stride=args.training_window_stride,
                              learning_rate=mixes.HEADLINE_LEARNING_RATE, seed=args.seed)

    from models.scoring import reconstruction_errors
    from models.training import train_autoencoder
    from spark_jobs.session import get_spark

    spark = get_spark(master="local[2]", driver_memory="2g", shuffle_partitions=4)
    points = method_options(TARGET_RATES, K_VALUES)
    results = {}
    with tempfile.TemporaryDirectory(prefix="netae-promise-") as work:
        for mix in mixes.chosen_mixes(args.mixes):
            logger.info("Mix %s: building and training %s", mix.name, KIND)
            built = mixes.build_mix(spark, mix, "auto", args.captures, Path(work) / mix.name, settings)
            model, _history = train_autoencoder(KIND, built.reader, mixes.training_config(settings), log=logger)
            scores = reconstruction_errors(model, built.reader.iter_windows())
            results[mix.name] = sweep(built.reader.metadata(), scores, settings, points)
    spark.stop()

    report = later_by_parameter(results) + "\n" + table(results)
    mixes.print_report(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
