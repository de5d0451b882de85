"""Benchmark: windows per second, building each feature set from a packet table in Spark.

For each Spark master (``local[1]``, ``local[2]`` by default) a child process
starts its own Spark session, reads a synthetic packet table from Parquet and
splits it. For each feature set it then times ``feature_rows``, fitting and
``build_windows`` into a local folder store. The derived rows are cached and
counted inside the timed span, so every number includes deriving the features.
Before timing, one small run per feature set warms up the Python workers.

Run::

    .venv/bin/python bench/bench_windows.py                      # print the table
    .venv/bin/python bench/bench_windows.py --write docs/benchmarks.md

``--write`` replaces the ``## Windows`` section of that file and keeps the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.markdown_section import write_section  # noqa: E402

from spark_jobs.features import FEATURE_SET_NAMES, check_training_window_stride  # noqa: E402

SECTION_TITLE = "## Windows"


def synthetic_packet_table(captures: int, frames_per_capture: int, *, seed: int = 0) -> pa.Table:
    """Return a packet table of TCP and UDP frames among 16 hosts, in the packet schema.

    Each host uses four client ports, so frames repeat conversations and the
    ``flow`` set finds many frames per flow (the table's ``rows`` column shows how many flows).
    """
    from spark_jobs.packet_schema import PACKET_SCHEMA

    rng = np.random.default_rng(seed)
    tables = []
    hosts = np.array([f"10.0.0.{index + 1}" for index in range(16)])
    for capture in range(captures):
        n = frames_per_capture
        gaps = rng.exponential(2_000_000, size=n).astype(np.int64)
        gaps[0] = 0
        tcp = rng.random(n) < 0.7
        columns = {name: [None] * n for name in PACKET_SCHEMA.names}
        columns.update(
            capture_id=[f"bench-{capture}"] * n,
            frame_number=np.arange(1, n + 1),
            timestamp_ns=1_733_300_000_000_000_000 + np.cumsum(gaps),
            inter_arrival_ns=gaps,
            timestamp_backwards=np.zeros(n, dtype=bool),
            interface_id=np.zeros(n, dtype=np.int32),
            link_type=np.ones(n, dtype=np.int32),
            frame_len=rng.integers(60, 1514, size=n).astype(np.int32),
            snaplen_cut=np.zeros(n, dtype=bool),
            malformed=np.zeros(n, dtype=bool),
            src_addr=hosts[rng.integers(0, 16, size=n)],
            dst_addr=hosts[rng.integers(0, 16, size=n)],
            ip_version=np.full(n, 4, dtype=np.int8),
            ip_proto=np.where(tcp, 6, 17).astype(np.int16),
            ttl=np.full(n, 64, dtype=np.int16),
            is_fragment=np.zeros(n, dtype=bool),
            src_port=rng.integers(40000, 40004, size=n).astype(np.int32),
            dst_port=np.where(tcp, rng.choice([22, 80, 443], size=n), 53).astype(np.int32),
            tcp_flags=np.where(tcp, 0x18, None),
            payload_len=rng.integers(0, 1400, size=n).astype(np.int32),
            protocol=np.where(tcp, "TLS", "DNS"),
        )
        columns["cap_len"] = columns["frame_len"]
        tables.append(pa.Table.from_pydict(columns, schema=PACKET_SCHEMA))
    return pa.concat_tables(tables)


def run_worker(master: str, table_path: str, feature_sets: list[str], length: int, stride: int, training_stride: int) -> list[dict]:
    """Time each feature set in a Spark session on ``master``; returns one result per set."""
    from objectstore import open_store
    from spark_jobs.session import get_spark
    from spark_jobs.windows import assign_splits, build_windows, feature_rows, fit_on_training_split

    spark = get_spark(master=master, shuffle_partitions=4)
    packets = spark.read.parquet(table_path)
    split = assign_splits(packets, train_fraction=0.6, validation_fraction=0.2).cache()
    frames = split.count()
    warm = split.where("position < 2000")
    results = []
    with tempfile.TemporaryDirectory(prefix="netae-bench-windows-") as folder:
        store = open_store(f"file://{folder}")
        for name in feature_sets:
            state, _ = fit_on_training_split(warm, window_length=length, window_stride=stride, feature_set_name=name)
            build_windows(spark, warm, state, store, output_prefix=f"warm-{name}/")

            started = time.perf_counter()
            rows = feature_rows(split, name).cache()
            row_count = rows.count()
            state, _ = fit_on_training_split(
                split, window_length=length, window_stride=stride, feature_set_name=name, rows=rows,
                training_window_stride=training_stride,
            )
            windows = build_windows(spark, split, state, store, output_prefix=f"{name}/", rows=rows)
            elapsed_s = time.perf_counter() - started
            rows.unpersist()

            total = sum(windows.counts.values())
            results.append(
                {"master": master, "feature_set": name, "frames": frames, "rows": row_count, "windows": total,
                 "features": windows.features, "seconds": elapsed_s, "windows_per_s": total / elapsed_s}
            )
    spark.stop()
    return results


def machine_description() -> str:
    """Describe the CPU, cores, memory, load and software versions of this machine."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = match.group(1).strip() if match else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())
        memory = f", {int(match.group(1)) / 1024 / 1024:.0f} GiB memory" if match else ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import pyspark

    return (
        f"{model}, {os.cpu_count()} cores{memory}; load average {load:.1f} when the run started; "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, PySpark {pyspark.__version__}"
    )


def markdown_section(results: list[dict], *, machine: str, command: str, length: int, stride: int, training_stride: int) -> str:
    """Return the ``## Windows`` section: what was measured, on what, by which command, and the table."""
    lines = [
        SECTION_TITLE,
        "",
        "Windows per second building each feature set from a packet table in Spark. The timed span",
        "covers deriving the feature rows, fitting the preprocessing state on the training split,",
        f"cutting the windows ({length} rows, stride {stride}, training windows every {training_stride} rows)",
        "and writing them as Parquet to a local",
        "folder. The packet table is synthetic (TCP and UDP among 16 hosts) and read from Parquet.",
        "Decoding is not included.",
        "Flow windows hold flows, not frames, so that set cuts fewer windows from the same frames.",
        "",
        f"Machine: {machine}.",
        "",
        "With a load average above the core count, other processes hold the cores, so the",
        "numbers are lower bounds and local[2] cannot be expected to beat local[1].",
        "",
        f"Command: `{command}`",
        "",
        "| master | feature set | frames | rows | windows | features | seconds | windows/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for item in results:
        lines.append(
            f"| {item['master']} | {item['feature_set']} | {item['frames']:,} | {item['rows']:,} | {item['windows']:,} "
            f"| {item['features']} | {item['seconds']:.1f} | {item['windows_per_s']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description="Windows per second for each feature set and Spark master.")
    parser.add_argument("--captures", type=int, default=4, help="synthetic captures in the packet table")
    parser.add_argument("--frames-per-capture", type=int, default=25_000, help="frames per synthetic capture")
    parser.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"], help="Spark masters to compare")
    parser.add_argument("--feature-sets", nargs="+", default=list(FEATURE_SET_NAMES), choices=FEATURE_SET_NAMES)
    parser.add_argument("--window-length", type=int, default=32, help="rows per window")
    parser.add_argument("--window-stride", type=int, default=8, help="rows between window starts")
    parser.add_argument("--training-window-stride", type=int, default=None,
                        help="rows between training window starts (default: the window stride)")
    parser.add_argument("--write", type=Path, default=None, help="markdown file whose ## Windows section to replace")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--table", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        check_training_window_stride(args.training_window_stride, args.window_stride)
    except ValueError as error:
        parser.error(f"--training-window-stride: {error}")
    training_stride = args.training_window_stride or args.window_stride

    if args.worker:
        results = run_worker(args.worker, args.table, args.feature_sets, args.window_length, args.window_stride,
                             training_stride)
        print(json.dumps(results))
        return 0

    command = "python bench/bench_windows.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    machine = machine_description()
    results = []
    with tempfile.TemporaryDirectory(prefix="netae-bench-table-") as folder:
        table_path = str(Path(folder) / "packets.parquet")
        pq.write_table(synthetic_packet_table(args.captures, args.frames_per_capture), table_path)
        environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
        for master in args.masters:
            completed = subprocess.run(
                [sys.executable, __file__, "--worker", master, "--table", table_path,
                 "--feature-sets", *args.feature_sets,
                 "--window-length", str(args.window_length), "--window-stride", str(args.window_stride),
                 "--training-window-stride", str(training_stride)],
                env=environment, cwd=REPO_ROOT, capture_output=True, text=True, check=False,
            )
            if completed.returncode != 0:
                sys.stderr.write(completed.stderr[-4000:])
                raise SystemExit(f"the benchmark worker for {master} failed with exit status {completed.returncode}")
            results.extend(json.loads(completed.stdout.strip().splitlines()[-1]))

    section = markdown_section(results, machine=machine, command=command.strip(),
                               length=args.window_length, stride=args.window_stride,
                               training_stride=training_stride)
    sys.stdout.write(section)
    if args.write is not None:
        write_section(args.write, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
