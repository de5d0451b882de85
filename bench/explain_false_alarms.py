"""List the later-period false alarms of one labelled mix and what lies behind them.

``bench/evaluate_mixes.py`` counts the normal windows of the test split that a
threshold flags (the later-period false-alarm rate). This script rebuilds one of
its mixes with the same settings, trains the Conv1D autoencoder alone (its scores
equal the evaluation page's Conv1D rows, because each model is seeded on its
own), and prints three Markdown tables:

* one row per episode of later-period false alarms (flagged normal windows whose
  frames overlap or touch). A row gives the episode's frames in the mixed
  capture, its seconds after the capture's first frame and the source of each
  window's first frame. It also gives the lowest and highest score, and the
  features with the largest reconstruction error in the highest-scoring window.
* the direction of strictly alternating windows. A window alternates strictly
  when its frames go back and forth between two addresses. Each row is an
  address that sends the first frame of such windows, and counts the training
  windows, the normal validation windows, the later normal windows and the later
  false alarms that start with it. Together they show whether the model was
  trained on one phase of an exchange only.
* each feature's median reconstruction error in the normal validation windows
  and in the later normal windows. It shows which features carry a shift of
  the later scores as a whole, not only in the windows that the threshold flags.

It reads the test labels, so it explains a result and sets nothing. Run from the
repository root::

    .venv/bin/python bench/explain_false_alarms.py --mix ssh-guessing-in-ftp --save-mix /tmp/ssh-mix
    .venv/bin/python bench/explain_false_alarms.py --mix dns-tunnel-in-alexa-lan --training-window-stride 3
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate_mixes as mixes  # noqa: E402

from models.metrics import alarm_episode_windows  # noqa: E402
from models.thresholds import THRESHOLD_METHODS, calibration_scores, fit_threshold  # noqa: E402

logger = logging.getLogger("explain_false_alarms")

KIND = "conv1d"
TOP_FEATURES = 3
"""Features named per episode, largest error first."""


def window_sources(metadata: pd.DataFrame, packets: pd.DataFrame) -> pd.DataFrame:
    """Return, per window, the source address of its first frame, and that address again when the
    window's frames alternate strictly.

    A window alternates strictly when each of its frames comes from the other
    address of the same two, in frame order.

    Args:
        metadata: window metadata with ``first_frame`` and ``last_frame``.
        packets: the capture's ``frame_number`` and ``src_addr``.

    Returns:
        Columns ``first_source`` and ``alternating_source`` (None where the
        window does not alternate strictly), aligned with ``metadata``.
    """
    ordered = packets.sort_values("frame_number", kind="stable")
    numbers = ordered["frame_number"].to_numpy(np.int64)
    sources = ordered["src_addr"].fillna("").astype(str).to_numpy()
    first_sources, alternating = [], []
    for first, last in zip(metadata["first_frame"].to_numpy(np.int64), metadata["last_frame"].to_numpy(np.int64)):
        chosen = sources[np.searchsorted(numbers, first) : np.searchsorted(numbers, last, side="right")]
        two_ends = len(set(chosen)) == 2
        back_and_forth = len(chosen) > 1 and bool(np.all(chosen[1:] != chosen[:-1]))
        first_sources.append(chosen[0] if len(chosen) else None)
        alternating.append(chosen[0] if two_ends and back_and_forth else None)
    return pd.DataFrame({"first_source": first_sources, "alternating_source": alternating}, index=metadata.index, dtype=object)


def episode_table(metadata: pd.DataFrame, scores: np.ndarray, errors: dict[int, np.ndarray], feature_names: list[str],
                  origin_ns: int) -> list[str]:
    """Return the Markdown rows of the later-period false-alarm episodes."""
    lines = [
        "| episode | frames | seconds after the first frame | windows | first frame from (windows) | scores "
        "| largest errors in the highest-scoring window |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups = alarm_episode_windows(metadata, metadata["later_false_alarm"].to_numpy())
    for number, episode in enumerate((metadata.loc[group] for group in groups), start=1):
        top = int(episode.index[np.argmax(scores[episode.index])])
        ranked = np.argsort(-errors[top], kind="stable")[:TOP_FEATURES]
        named = ", ".join(f"{feature_names[index]} ({errors[top][index]:.3f})" for index in ranked)
        seconds = (int(episode["start_ns"].min()) - origin_ns) / 1e9
        senders = ", ".join(f"{source} ({count})" for source, count in episode["first_source"].value_counts().items())
        lines.append(
            f"| {number} | {int(episode['first_frame'].min())} to {int(episode['last_frame'].max())} | {seconds:.1f} "
            f"| {len(episode)} | {senders} | {scores[episode.index].min():.4g} to {scores[top]:.4g} | {named} |"
        )
    return lines


def feature_shift_table(validation_errors: np.ndarray, later_errors: np.ndarray, feature_names: list[str]) -> list[str]:
    """Return the Markdown rows of each feature's median reconstruction error in the normal validation windows
    and in the later normal windows, largest growth first.

    Medians describe the typical window, so a few high-scoring windows do not
    move them: the rows show which features carry a shift of the later scores
    as a whole. The last row gives the median score of each group.

    Args:
        validation_errors: [windows, features] errors of the normal validation windows.
        later_errors: [windows, features] errors of the later normal windows.
    """
    groups = [errors if len(errors) else np.zeros((1, len(feature_names))) for errors in (validation_errors, later_errors)]
    validation_median, later_median = (np.median(errors, axis=0) for errors in groups)
    validation_score, later_score = (float(np.median(errors.mean(axis=1))) for errors in groups)
    lines = ["| feature | normal validation windows | later normal windows |", "| --- | --- | --- |"]
    for index in np.argsort(-(later_median - validation_median), kind="stable"):
        lines.append(f"| {feature_names[index]} | {validation_median[index]:.5f} | {later_median[index]:.5f} |")
    lines.append(f"| (median score) | {validation_score:.5f} | {later_score:.5f} |")
    return lines


def usual_ports(packets: pd.DataFrame) -> dict[str, int]:
    """Return the most frequent source port of each address.

    A server usually sends from its well-known port, so the port separates a
    server from its clients in the tables.
    """
    ported = packets.dropna(subset=["src_addr", "src_port"])
    if ported.empty:
        return {}
    return {str(address): int(ports.mode().iloc[0]) for address, ports in ported.groupby("src_addr")["src_port"]}


def phase_table(metadata: pd.DataFrame, ports: dict[str, int]) -> list[str]:
    """Return the Markdown rows that count strictly alternating windows by the source of their first frame.

    Each address comes with its most frequent source port from ``ports``, so a
    reader can tell the server's replies from the client's requests. The last
    row counts every window of each group, alternating or not.
    """
    groups = {
        "training windows": metadata["split"] == "train",
        "normal validation windows": metadata["calibration"],
        "later normal windows": metadata["later_normal"],
        "later false alarms": metadata["later_false_alarm"],
    }
    alternating = metadata[metadata["alternating_source"].notna()]
    lines = ["| first frame from | " + " | ".join(groups) + " |", "| --- |" + " --- |" * len(groups)]
    for source in sorted(alternating["alternating_source"].unique()):
        counts = [int((groups[name] & (metadata["alternating_source"] == source)).sum()) for name in groups]
        if not any(counts):
            continue
        port = f" (usually from port {ports[source]})" if source in ports else ""
        lines.append(f"| {source}{port} | " + " | ".join(str(count) for count in counts) + " |")
    totals = [int(mask.sum()) for mask in groups.values()]
    lines.append("| (all windows) | " + " | ".join(str(total) for total in totals) + " |")
    return lines


def split_frames(metadata: pd.DataFrame) -> str:
    """Return the frame range that each split's windows cover, for reading the mixed capture in Wireshark.

    A few frames between two splits, and at the end, belong to no window, so
    they fall outside every range.
    """
    ranges = metadata.groupby("split").agg(first=("first_frame", "min"), last=("last_frame", "max"))
    return ", ".join(f"{split} {int(ranges.loc[split, 'first'])} to {int(ranges.loc[split, 'last'])}"
                     for split in ("train", "validation", "test") if split in ranges.index)


def explain(spark, mix: mixes.Mix, remap: str, method: str, captures: Path, work: Path, settings: mixes.Settings,
            save_mix: Path | None = None) -> str:
    """Build one mix, train the Conv1D model, and return the report on its later-period false alarms.

    With ``save_mix``, the mixed capture and its labels file are copied into that
    folder, so that the frames the report names can be read with tshark or Wireshark.
    """
    from flows.score_windows import feature_errors
    from models.scoring import reconstruction_errors
    from models.training import train_autoencoder

    built = mixes.build_mix(spark, mix, remap, captures, work, settings)
    if save_mix is not None:
        save_mix.mkdir(parents=True, exist_ok=True)
        for path in (built.mixed.capture_path, built.mixed.labels_path):
            shutil.copy2(path, save_mix / Path(path).name)
    store = mixes.open_store(f"file://{built.store_folder}")
    packets = (
        mixes.read_packet_table(spark, store, output_prefix="lake/packets/", capture_ids=[built.capture_id])
        .select("frame_number", "timestamp_ns", "src_addr", "src_port").toPandas()
    )

    reader = built.reader
    model, _history = train_autoencoder(KIND, reader, mixes.training_config(settings), log=logger)
    scores = reconstruction_errors(model, reader.iter_windows())
    metadata = reader.metadata()
    threshold = fit_threshold(method, calibration_scores(metadata, scores), k=settings.threshold_k,
                              target_false_alarm_rate=settings.target_false_alarm_rate,
                              pot_initial_quantile=settings.pot_initial_quantile)

    labels = mixes.window_labels(metadata)
    later_normal = (metadata["split"] == "test").to_numpy() & (labels == 0)
    flagged = threshold.flag(scores)
    metadata = metadata.assign(
        later_normal=later_normal, later_false_alarm=later_normal & flagged,
        calibration=(metadata["split"] == "validation").to_numpy() & (labels == 0),
    )
    metadata = metadata.join(window_sources(metadata, packets))
    positions = np.flatnonzero(metadata["later_false_alarm"].to_numpy())
    errors = dict(zip(positions.tolist(), feature_errors(model, reader, positions)))
    validation_errors = feature_errors(model, reader, np.flatnonzero(metadata["calibration"].to_numpy()))
    later_errors = feature_errors(model, reader, np.flatnonzero(later_normal))

    lines = [
        f"## {mix.name} ({remap}), {KIND}, `{method}` threshold {threshold.value:.4g}, seed {settings.seed}",
        "",
        f"Later-period false alarms: {len(positions)} of {int(later_normal.sum())} normal windows.",
        f"Frames of the mixed capture that each split's windows cover: {split_frames(metadata)}.",
        "",
        *episode_table(metadata, scores, errors, built.windows.feature_names, int(packets["timestamp_ns"].min())),
        "",
        "Strictly alternating windows, by the source of their first frame:",
        "",
        *phase_table(metadata, usual_ports(packets)),
        "",
        "Median reconstruction error per feature, largest growth from validation to later windows first:",
        "",
        *feature_shift_table(validation_errors, later_errors, built.windows.feature_names),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Explain the later-period false alarms of one mix."""
    parser = argparse.ArgumentParser(
        description="List the later-period false alarms of one labelled mix (normal windows of the test split "
        "that the threshold flags) and print three Markdown tables to stdout: the episodes of those false alarms, "
        "strictly alternating windows counted by the address of their first frame, and each feature's median "
        "reconstruction error in normal validation and later normal windows. Trains the Conv1D model with "
        "the settings of docs/evaluation.md and reads the test labels, so it explains a result and sets nothing.",
    )
    parser.add_argument("--captures", type=Path, default=mixes.REPO_ROOT.parent / "shared" / "captures",
                        help="folder of the public captures (default: ../shared/captures, relative to the repository root)")
    parser.add_argument("--mix", required=True, choices=[mix.name for mix in mixes.MIXES + mixes.EXTRA_MIXES],
                        help="the mix to explain")
    parser.add_argument("--remap", default="auto", choices=["auto", "none"], help="remap mode of the mix (default: auto)")
    parser.add_argument("--method", default=mixes.TARGET_METHOD, choices=THRESHOLD_METHODS, help=f"threshold method (default: {mixes.TARGET_METHOD})")
    parser.add_argument("--window-stride", type=int, default=mixes.HEADLINE_WINDOW_STRIDE,
                        help=f"frames between window starts (default: {mixes.HEADLINE_WINDOW_STRIDE})")
    parser.add_argument("--training-window-stride", type=int, default=None,
                        help="frames between training window starts (default: the window stride)")
    parser.add_argument("--learning-rate", type=float, default=mixes.HEADLINE_LEARNING_RATE,
                        help=f"Adam learning rate (default: {mixes.HEADLINE_LEARNING_RATE})")
    parser.add_argument("--seed", type=int, default=mixes.Settings.seed, help=f"seed of the model (default: {mixes.Settings.seed})")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this Markdown file")
    parser.add_argument("--save-mix", type=Path, default=None,
                        help="copy the mixed capture and its labels file into this folder, to read its frames in Wireshark")
    args = parser.parse_args(argv)
    mixes.start_run(parser, args.captures, args.training_window_stride, args.window_stride)
    settings = mixes.Settings(window_stride=args.window_stride, training_window_stride=args.training_window_stride,
                              learning_rate=args.learning_rate, seed=args.seed)
    (mix,) = mixes.chosen_mixes([args.mix])

    from spark_jobs.session import get_spark

    spark = get_spark(master="local[2]", driver_memory="2g", shuffle_partitions=4)
    with tempfile.TemporaryDirectory(prefix="netae-explain-") as work:
        report = explain(spark, mix, args.remap, args.method, args.captures, Path(work), settings, save_mix=args.save_mix)
    spark.stop()
    mixes.print_report(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
