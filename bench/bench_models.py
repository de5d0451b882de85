"""Benchmark the detectors: training time per epoch and scoring windows per second.

Uses seeded synthetic windows of the default shape (32 frames of 11 features,
values in [0, 1]), so the numbers measure the models, not the data. Writes the
"## Models" section of docs/benchmarks.md and keeps every other section.

Run from the repository root::

    .venv/bin/python bench/bench_models.py --windows 4096 --epochs 3
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
_KERAS_HOME = tempfile.mkdtemp(prefix="netae-bench-keras-")
atexit.register(shutil.rmtree, _KERAS_HOME, ignore_errors=True)
os.environ.setdefault("KERAS_HOME", _KERAS_HOME)

import numpy as np  # noqa: E402

from bench.markdown_section import write_section  # noqa: E402

SECTION = "## Models"


def synthetic_windows(count: int, steps: int, features: int, seed: int) -> np.ndarray:
    """Return float32 windows [count, steps, features] in [0, 1]: smooth signals plus noise."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1, 1))
    grid = np.arange(steps).reshape(1, steps, 1) / 3.0 + np.linspace(0, 1, features).reshape(1, 1, features)
    values = 0.5 + 0.3 * np.sin(grid + phase) + rng.normal(0, 0.05, size=(count, steps, features))
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def bench_autoencoder(kind: str, windows: np.ndarray, epochs: int, batch_size: int) -> dict:
    """Train ``kind`` for ``epochs`` epochs and score every window; return the timings."""
    import keras

    from models.scoring import reconstruction_errors
    from models.training import TrainingConfig, build_model

    config = TrainingConfig(batch_size=batch_size, seed=1)
    keras.utils.set_random_seed(config.seed)
    model = build_model(kind, windows.shape[1], windows.shape[2], config)
    epoch_s = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.fit(windows, windows, epochs=1, batch_size=batch_size, shuffle=True, verbose=0)
        epoch_s.append(time.perf_counter() - started)
    reconstruction_errors(model, [windows[:256]])  # warm-up: the first call traces the graph
    started = time.perf_counter()
    reconstruction_errors(model, [windows])
    scoring_s = time.perf_counter() - started
    # For comparison: Keras predict runs the same forward pass as a compiled graph.
    model.predict(windows[:256], batch_size=256, verbose=0)
    started = time.perf_counter()
    model.predict(windows, batch_size=256, verbose=0)
    predict_s = time.perf_counter() - started
    return {
        "first_epoch_s": epoch_s[0],
        "epoch_s": float(np.median(epoch_s[1:])) if len(epoch_s) > 1 else epoch_s[0],
        "windows_per_s": len(windows) / scoring_s,
        "predict_windows_per_s": len(windows) / predict_s,
        "parameters": model.count_params(),
    }


def bench_baseline(kind: str, windows: np.ndarray) -> dict:
    """Fit a baseline once and score every window; return the timings."""
    from models.baselines import build_baseline

    detector = build_baseline(kind, seed=1)
    started = time.perf_counter()
    detector.fit(windows)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    detector.score(windows)
    scoring_s = time.perf_counter() - started
    return {"fit_s": fit_s, "windows_per_s": len(windows) / scoring_s}


def render_section(results: dict, args: argparse.Namespace, command: str, load: float) -> str:
    """Return the markdown of the "## Models" section."""
    import tensorflow as tf

    lines = [
        SECTION,
        "",
        f"Measured by `{command}` on {os.cpu_count()} CPU cores ({platform.machine()}, Python",
        f"{platform.python_version()}, TensorFlow {tf.__version__}, CPU only), on {args.windows} seeded synthetic windows of",
        f"{args.steps} frames x {args.features} features, batch {args.batch_size}, default model sizes (32 LSTM units,",
        "32 Conv1D filters of kernel 5). An epoch is one pass over all windows; the first epoch includes graph",
        "tracing, so it is listed apart and the per-epoch figure is the median of the later epochs. Scoring runs",
        "`models.scoring.reconstruction_errors` (batches of 256, the model called eagerly) after one warm-up call;",
        "the last column runs the same forward pass through Keras `predict`, a compiled graph, for comparison.",
        f"The 1-minute load average was {load:.1f} when the run started. Above the core count, other processes",
        "shared the cores, and the figures are slower than on an idle machine.",
        "",
        "| detector | parameters | first epoch (s) | epoch (s) | training (windows/s) | scoring (windows/s) | `predict` (windows/s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind in ("lstm", "conv1d"):
        item = results[kind]
        lines.append(
            f"| {kind} | {item['parameters']:,} | {item['first_epoch_s']:.2f} | {item['epoch_s']:.2f} "
            f"| {args.windows / item['epoch_s']:,.0f} | {item['windows_per_s']:,.0f} | {item['predict_windows_per_s']:,.0f} |"
        )
    lines += ["", "| baseline | fit (s) | scoring (windows/s) |", "| --- | --- | --- |"]
    for kind in ("isolation_forest", "zscore"):
        item = results[kind]
        lines.append(f"| {kind} | {item['fit_s']:.2f} | {item['windows_per_s']:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=4096, help="synthetic windows to train and score on")
    parser.add_argument("--steps", type=int, default=32, help="frames per window")
    parser.add_argument("--features", type=int, default=11, help="features per frame")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per autoencoder, at least 2")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per training batch")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md", help="markdown file to update")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 so that one epoch without tracing is timed, got {args.epochs}")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    windows = synthetic_windows(args.windows, args.steps, args.features, seed=7)
    results = {kind: bench_autoencoder(kind, windows, args.epochs, args.batch_size) for kind in ("lstm", "conv1d")}
    results.update({kind: bench_baseline(kind, windows) for kind in ("isolation_forest", "zscore")})
    command = " ".join([".venv/bin/python bench/bench_models.py", *(argv if argv is not None else sys.argv[1:])])
    write_section(args.out, render_section(results, args, command, load))
    for kind, item in results.items():
        print(kind, {name: round(value, 3) for name, value in item.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
