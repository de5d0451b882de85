"""Measure two ways to cover every phase of request/reply traffic that the pipeline does not offer.

Windows that start every 4 frames in a strictly alternating exchange (a request,
then its reply) all start at the same phase of it. The model is never trained on the other phase,
and later traffic that starts there scores high. The pipeline's
option against this is ``NETAE_TRAINING_WINDOW_STRIDE``. This script measures
two other ways, on the remapped mixes of ``bench/evaluate_mixes.py``, for the
Conv1D autoencoder:

* ``random-training-phase``: each training window starts at a seeded random row
  among the 4 rows that one stride step spans (start ``4k + r``), so training
  covers every phase with as many windows as stride 4 gives. Validation and test
  windows stay on the usual grid.
* ``min-over-phases``: training as the pipeline does it. Windows are cut at
  every frame, and each window of the usual grid takes the smallest score of
  itself and the windows that start in the next 3 frames. When the exchange
  alternates strictly, two of them start with the same direction as the
  training windows. Validation windows are scored the same way before
  calibration. The pipeline's own scores (the smallest of 1 window, from the
  same model) are reported beside it as a check.

Both reuse the pipeline's windows job with ``training_window_stride`` 1 and
choose windows afterwards, so nothing in the pipeline changes. Thresholds and
rates come from ``evaluate_mixes.evaluate``, as in docs/evaluation.md. Run from
the repository root::

    .venv/bin/python bench/phase_variants.py --variant min-over-phases
    .venv/bin/python bench/phase_variants.py --variant random-training-phase --seeds 42 1 7
    .venv/bin/python bench/phase_variants.py --variant random-training-phase --ensemble 3
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate_mixes as mixes  # noqa: E402

from models.datasets import WindowReader  # noqa: E402
from models.thresholds import calibration_scores  # noqa: E402

logger = logging.getLogger("phase_variants")

VARIANTS = ("random-training-phase", "min-over-phases")
KIND = "conv1d"
GRID_STRIDE = mixes.HEADLINE_WINDOW_STRIDE
"""Frames between the starts of scored windows, as in the headline of docs/evaluation.md."""
ENSEMBLE_SEED_STEP = 1000
"""Seed distance between the members of an ensemble, so ensembles of seeds below 1000 share no member seed."""


class SubsetReader(WindowReader):
    """A window reader that skips the windows a mask leaves out.

    Args:
        base: the reader of the whole window set.
        keep: one boolean per window of ``base``, in its ``iter_windows`` order.
    """

    def __init__(self, base: WindowReader, keep: np.ndarray) -> None:
        super().__init__(base._store, base._parts, steps=base.steps, features=base.features, batch_rows=base._batch_rows)
        self._keep = np.asarray(keep, dtype=bool)

    def _record_batches(self, columns: list[str]):
        offset = 0
        for batch in super()._record_batches(columns):
            mask = self._keep[offset : offset + batch.num_rows]
            offset += batch.num_rows
            yield batch.filter(pa.array(mask))


def random_phase_mask(metadata: pd.DataFrame, seed: int) -> np.ndarray:
    """Keep one seeded random training window per 4 consecutive starts, and every other window.

    Training windows must start at every row (``training_window_stride`` 1), so
    ``window_index`` is the start row inside the segment.
    """
    keep = (metadata["split"] != "train").to_numpy()
    rng = np.random.default_rng(seed)
    train = metadata[metadata["split"] == "train"]
    for _, segment in train.groupby("capture_id", sort=True):
        steps = segment["window_index"].to_numpy() // GRID_STRIDE
        for step in np.unique(steps):
            members = segment.index[steps == step]
            keep[members[rng.integers(0, len(members))]] = True
    return keep


def on_grid(metadata: pd.DataFrame) -> np.ndarray:
    """Return, for windows cut at every frame, which of them start on the usual grid."""
    return (metadata["window_index"].to_numpy() % GRID_STRIDE) == 0


def min_over_phases(metadata: pd.DataFrame, scores: np.ndarray, width: int) -> np.ndarray:
    """Return, per window, the smallest score of it and the windows starting in the next ``width - 1`` rows.

    Windows must be cut at every frame. Segments (capture and split) are kept
    apart, so a window never borrows a score across a split boundary.
    """
    frame = metadata[["capture_id", "split", "window_index"]].assign(score=scores, position=np.arange(len(scores)))
    result = np.empty(len(scores))
    for _, segment in frame.groupby(["capture_id", "split"], sort=False):
        ordered = segment.sort_values("window_index")
        values = ordered["score"].to_numpy()
        smallest = np.array([values[index : index + width].min() for index in range(len(values))])
        result[ordered["position"].to_numpy()] = smallest
    return result


def train_and_score(train_reader: WindowReader, score_reader: WindowReader, settings: mixes.Settings) -> np.ndarray:
    """Train the Conv1D autoencoder on ``train_reader`` and return the scores of every window of ``score_reader``."""
    from models.scoring import reconstruction_errors
    from models.training import train_autoencoder

    model, history = train_autoencoder(KIND, train_reader, mixes.training_config(settings), log=logger)
    logger.info("%s: %d epochs", KIND, len(history["loss"]))
    return reconstruction_errors(model, score_reader.iter_windows())


def run(spark, mix: mixes.Mix, variant: str, seed: int, captures: Path, work: Path, ensemble: int = 1) -> list[dict]:
    """Build one remapped mix, apply ``variant`` and return one result row per scoring rule.

    With ``ensemble`` above 1 (random training phase only), that many models are
    trained, member ``m`` with seed ``seed + m * ENSEMBLE_SEED_STEP`` and its own
    random phases, and a window's score is the mean of their scores.
    """
    window_stride = GRID_STRIDE if variant == "random-training-phase" else 1
    settings = mixes.Settings(window_stride=window_stride, training_window_stride=1, learning_rate=mixes.HEADLINE_LEARNING_RATE, seed=seed)
    built = mixes.build_mix(spark, mix, "auto", captures, work / f"{mix.name}-{variant}-{seed}", settings)
    reader, spans = built.reader, built.spans
    metadata = reader.metadata()

    rows = []
    if variant == "random-training-phase":
        members = []
        for member in range(ensemble):
            member_seed = seed + member * ENSEMBLE_SEED_STEP
            member_settings = dataclasses.replace(settings, seed=member_seed)
            members.append(train_and_score(SubsetReader(reader, random_phase_mask(metadata, member_seed)), reader, member_settings))
        scores = np.mean(members, axis=0)
        beyond = later_beyond_validation(metadata, scores, settings.target_false_alarm_rate)
        name = variant if ensemble == 1 else f"{variant}, mean of {ensemble} models"
        rows.append(_row(mix, name, seed, mixes.evaluate(metadata, scores, spans, settings), beyond))
        return rows

    # The model is trained and validated on exactly the pipeline's windows.
    grid = on_grid(metadata)
    scores = train_and_score(SubsetReader(reader, grid), reader, settings)
    grid_metadata = metadata[grid].reset_index(drop=True)
    for width, name in ((1, "pipeline scores (smallest of 1)"), (GRID_STRIDE, variant)):
        smallest = min_over_phases(metadata, scores, width)[grid]
        beyond = later_beyond_validation(grid_metadata, smallest, settings.target_false_alarm_rate)
        rows.append(_row(mix, name, seed, mixes.evaluate(grid_metadata, smallest, spans, settings), beyond))
    return rows


def later_beyond_validation(metadata: pd.DataFrame, scores: np.ndarray, target: float) -> dict:
    """Compare the later normal windows' scores with the validation scores that thresholds are calibrated on.

    Returns how many later normal windows score above every normal validation
    window, the lowest threshold whose later-period rate stays within twice
    ``target``, and the share of anomalous windows at or below that threshold
    (the recall it would give up). It reads the test labels, so it explains a
    result and never sets a threshold.
    """
    labels = mixes.window_labels(metadata)
    validation = calibration_scores(metadata, scores)
    later = np.sort(scores[(metadata["split"].to_numpy() == "test") & (labels == 0)])[::-1]
    allowed = int(np.floor(2 * target * len(later)))
    lowest = float(later[allowed]) if allowed < len(later) else 0.0
    return {
        "later_above_validation": int((later > validation.max()).sum()), "later_windows": len(later),
        "largest_validation": float(validation.max()), "largest_later": float(later[0]), "lowest_kept_threshold": lowest,
        "attack_at_or_below": float((scores[labels == 1] <= lowest).mean()),
    }


def _row(mix: mixes.Mix, variant: str, seed: int, result: dict, beyond: dict) -> dict:
    """Flatten one ``evaluate`` result and its ``later_beyond_validation`` figures into a table row."""
    pot, quantile = result["thresholds"]["pot"], result["thresholds"]["quantile"]
    return {
        **beyond,
        "mix": mix.name, "variant": variant, "seed": seed,
        "pot_f1": pot["f1"], "pot_recall": pot["recall"], "pr_auc": result["ranking"]["pr_auc"],
        "pot_threshold": pot["threshold"]["value"], "pot_same": pot["false_alarm_rate_cross_fitted"],
        "pot_later": pot["false_alarm_rate_held_out"], "quantile_f1": quantile["f1"],
        "quantile_later": quantile["false_alarm_rate_held_out"],
    }


def table(rows: list[dict]) -> str:
    """Return the results as two markdown tables: the detection results, then how far later scores lie."""
    lines = [
        "| mix (remapped) | scoring | seed | F1 (`pot`) | recall (`pot`) | PR-AUC | `pot` threshold | same period (`pot`) "
        "| later period (`pot`) | F1 (`quantile`) | later period (`quantile`) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['mix']} | {row['variant']} | {row['seed']} | {row['pot_f1']:.3f} | {row['pot_recall']:.3f} | {row['pr_auc']:.3f} "
            f"| {row['pot_threshold']:.4g} | {row['pot_same']:.3f} | {row['pot_later']:.3f} | {row['quantile_f1']:.3f} "
            f"| {row['quantile_later']:.3f} |"
        )
    lines += [
        "",
        "| mix (remapped) | scoring | seed | later normal windows above every validation score | largest validation score "
        "| largest later normal score | lowest threshold within twice the target, later period | anomalous windows at or below it |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['mix']} | {row['variant']} | {row['seed']} | {row['later_above_validation']} of {row['later_windows']} "
            f"| {row['largest_validation']:.4g} | {row['largest_later']:.4g} | {row['lowest_kept_threshold']:.4g} "
            f"| {row['attack_at_or_below']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the variant on each mix and seed; print the table and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="which way to cover the phases")
    parser.add_argument("--captures", type=Path, default=mixes.REPO_ROOT.parent / "shared" / "captures",
                        help="folder of the public captures")
    parser.add_argument("--mixes", nargs="+", default=None, choices=[mix.name for mix in mixes.MIXES],
                        help="names of the mixes to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42], help="seeds of the model and of the random phases (default: 42)")
    parser.add_argument("--ensemble", type=int, default=1,
                        help="random training phase only: average the scores of this many models of different seeds (default: 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds lists a seed twice: {args.seeds}")
    if args.ensemble < 1 or (args.ensemble > 1 and args.variant != "random-training-phase"):
        parser.error(f"--ensemble must be at least 1, and above 1 only with --variant random-training-phase; got {args.ensemble}")
    mixes.start_run(parser, args.captures)
    from spark_jobs.session import get_spark

    spark = get_spark(master="local[2]", driver_memory="3g", shuffle_partitions=4)
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="netae-phases-") as work:
        for mix in mixes.MIXES:
            if args.mixes and mix.name not in args.mixes:
                continue
            for seed in args.seeds:
                logger.info("Mix %s, %s, seed %d", mix.name, args.variant, seed)
                rows += run(spark, mix, args.variant, seed, args.captures, Path(work), ensemble=args.ensemble)
    spark.stop()

    document = table(rows)
    mixes.print_report(document, args.out)
    logger.info("%s took %.1f min", args.variant, (time.perf_counter() - started) / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
