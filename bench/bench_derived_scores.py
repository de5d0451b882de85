"""Benchmark: frame and host scores of one score run, by capture size.

The ``score`` flow derives every frame's and host's score on the Spark driver,
from the feature-row metadata and the frames' addresses (see
``flows.score.derive_scores``). This benchmark times that step alone,
``WindowFrames.frame_scores`` and then ``models.derived_scores.host_scores``,
on synthetic captures of growing size. It also reports the peak resident memory
of a child process that contains those inputs, to size the driver's memory. Each
size runs in its own child process, so one size's memory does not count for the
next.

Run::

    .venv/bin/python bench/bench_derived_scores.py                      # print the table
    .venv/bin/python bench/bench_derived_scores.py --write docs/benchmarks.md

``--write`` replaces the ``## Frame and host scores`` section of that file and keeps the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.markdown_section import write_section  # noqa: E402

SECTION_TITLE = "## Frame and host scores"
DEFAULT_FRAMES = (250_000, 1_000_000, 4_000_000)
HOSTS = 10_000
LENGTH, STRIDE = 32, 8


def synthetic_inputs(frames: int, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (row metadata, window scores, frame addresses) of a capture of ``frames`` frames.

    One feature row per frame in capture mode, as the ``paper`` feature set
    gives, with window scores drawn at random and addresses among ``HOSTS``
    IPv4 hosts.
    """
    rng = np.random.default_rng(seed)
    numbers = np.arange(1, frames + 1, dtype=np.int64)
    rows = pd.DataFrame({"host": None, "first_frame": numbers, "last_frame": numbers, "start_ns": numbers * 1_000})
    windows = (frames - LENGTH) // STRIDE + 1
    scores = pd.DataFrame({"window_index": np.arange(windows), "host": None, "score": rng.gamma(2.0, 0.01, size=windows)})
    pool = np.array([f"10.{index // 65536}.{index // 256 % 256}.{index % 256}" for index in range(HOSTS)], dtype=object)
    addresses = pd.DataFrame({"frame_number": numbers, "src_addr": pool[rng.integers(0, HOSTS, frames)],
                              "dst_addr": pool[rng.integers(0, HOSTS, frames)]})
    return rows, scores, addresses


def measure(frames: int) -> dict:
    """Time frame and host scores for one capture size; runs in a child process."""
    from flows.score_windows import WindowFrames
    from models.derived_scores import host_scores
    from spark_jobs.features import fit_preprocessing

    rows, scores, addresses = synthetic_inputs(frames)
    state = fit_preprocessing({}, {}, {}, window_length=LENGTH, window_stride=STRIDE)
    threshold = float(np.quantile(scores["score"], 0.99))

    started = time.perf_counter()
    mapping = WindowFrames(rows, state)
    frame_table = mapping.frame_scores(scores)
    frames_done = time.perf_counter()
    host_table = host_scores(frame_table, addresses, threshold)
    hosts_done = time.perf_counter()

    return {
        "frames": frames,
        "windows": len(scores),
        "hosts": len(host_table),
        "frame_seconds": frames_done - started,
        "host_seconds": hosts_done - frames_done,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def table(results: list[dict]) -> str:
    """Return the Markdown table of the measurements."""
    lines = [
        "| frames | windows | hosts | frame scores (s) | host scores (s) | frames/s, both steps | peak RSS (MiB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results:
        total = row["frame_seconds"] + row["host_seconds"]
        lines.append(
            f"| {row['frames']:,} | {row['windows']:,} | {row['hosts']:,} | {row['frame_seconds']:.2f} | "
            f"{row['host_seconds']:.2f} | {row['frames'] / total:,.0f} | {row['peak_rss_mib']:,.0f} |"
        )
    return "\n".join(lines)


def section(results: list[dict], command: str, load: float) -> str:
    """Return the whole benchmarks section, with the machine, its load average when the run started, and the command."""
    return "\n".join([
        SECTION_TITLE,
        "",
        "Frame and host scores of one `netae score` run, derived on the driver from the row metadata and every",
        f"frame's addresses. Synthetic captures: one row per frame, windows of {LENGTH} frames every {STRIDE}, random window",
        f"scores, source and destination among {HOSTS:,} IPv4 hosts. Each size runs in its own process; peak RSS is",
        "that process's, inputs and the Python interpreter with pandas included.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; load average {load:.1f} when the run started;",
        f"Python {platform.python_version()}, pandas {pd.__version__}.",
        "",
        f"Command: `{command}`",
        "",
        table(results),
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    """Run each size in a child process and print or write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=list(DEFAULT_FRAMES), help="capture sizes, in frames")
    parser.add_argument("--write", type=Path, default=None, help="replace this section of a Markdown file, such as docs/benchmarks.md")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return 0

    command = "python bench/bench_derived_scores.py" + (f" --write {args.write}" if args.write else "")
    load = os.getloadavg()[0]
    results = []
    for frames in args.frames:
        if frames < LENGTH:
            parser.error(f"--frames {frames} is below one window of {LENGTH} frames")
        child = subprocess.run([sys.executable, __file__, "--child", str(frames)], capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return child.returncode
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(f"{frames:,} frames done", file=sys.stderr)

    text = section(results, command, load)
    print(text)
    if args.write is not None:
        write_section(args.write, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
