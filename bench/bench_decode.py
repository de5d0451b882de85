"""Benchmark capture decoding: netae's decoder against tshark, dpkt and pyshark.

Each tool decodes the same file in a child process of its own, so that the
child's resource usage (``os.wait4``) gives its peak resident memory (RSS
high-water mark, imports included) alone. Rates leave start-up out. The
Python tools time their decoding loop themselves, after one warm-up read of a
one-frame copy, counting the CPU of the process and of the tshark child that
pyshark waits for. For tshark, the fastest of three runs on a one-frame copy
of the capture is subtracted. The rate per core is frames divided by user plus
system CPU seconds. The wall-clock rate is also shown, and on a busy machine it
is lower. Each tool runs ``--repeat`` times (3 by default) in new processes,
and the table shows the run of median CPU time, because a run of a few tens of
milliseconds varies by 10% or more from one process to the next.

What each tool produces:

* netae: ``CaptureDecoder.batches()``, every column of the packet table.
* tshark: ``tshark -n -T fields`` with frame number, epoch time, lengths,
  Source, Destination, TCP/UDP ports and Protocol, written to /dev/null.
* dpkt: Ethernet, IPv4/IPv6, TCP/UDP decode with addresses formatted as text.
* pyshark: ``FileCapture(use_json=True)`` reading the same fields, on the
  first ``--pyshark-frames`` frames only because it runs at a few thousand
  frames per second.

Usage::

    python bench/bench_decode.py                # largest shared capture + 2M synthetic frames
    python bench/bench_decode.py --large        # also a synthetic capture above 2 GiB, netae only

The synthetic captures are written to a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from bench.synthetic_capture import write_synthetic_pcap  # noqa: E402

SHARED_CAPTURES = REPOSITORY_ROOT / ".." / "shared" / "captures"
TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "_ws.col.Source",
    "_ws.col.Destination", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "_ws.col.Protocol",
]
LARGE_CAPTURE_FRAMES = 18_000_000  # 2.11 GiB with the synthetic frame sizes


def run_netae(path: str, limit: int | None) -> int:
    from spark_jobs.decoder import CaptureDecoder

    decoder = CaptureDecoder(path, capture_id="bench")
    frames = 0
    for batch in decoder.batches():
        frames += batch.num_rows
    if decoder.summary.error is not None:
        raise RuntimeError(str(decoder.summary.error))
    return frames


def run_dpkt(path: str, limit: int | None) -> int:
    import socket

    import dpkt

    frames = 0
    with open(path, "rb") as handle:
        for timestamp, data in dpkt.pcap.UniversalReader(handle):
            frames += 1
            record = [timestamp, len(data)]
            ethernet = dpkt.ethernet.Ethernet(data)
            network = ethernet.data
            if isinstance(network, dpkt.ip.IP):
                record += [socket.inet_ntoa(network.src), socket.inet_ntoa(network.dst)]
            elif isinstance(network, dpkt.ip6.IP6):
                record += [socket.inet_ntop(socket.AF_INET6, network.src),
                           socket.inet_ntop(socket.AF_INET6, network.dst)]
            else:
                continue
            transport = network.data
            if isinstance(transport, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                record += [transport.sport, transport.dport]
    return frames


def run_pyshark(path: str, limit: int | None) -> int:
    import pyshark

    capture = pyshark.FileCapture(path, use_json=True, keep_packets=False)
    frames = 0
    try:
        for packet in capture:
            record = [packet.frame_info.time_epoch, packet.length, packet.highest_layer]
            if "IP" in packet:
                record += [packet.ip.src, packet.ip.dst]
            transport = packet.transport_layer
            if transport:
                record += [packet[transport].srcport, packet[transport].dstport]
            frames += 1
            if limit is not None and frames >= limit:
                break
    finally:
        capture.close()
    return frames


PYTHON_TOOLS = {"netae": run_netae, "dpkt": run_dpkt, "pyshark": run_pyshark}
TOOL_MODULES = {"netae": "spark_jobs.decoder", "dpkt": "dpkt", "pyshark": "pyshark"}


def _process_cpu_s() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _child_python(tool: str, path: Path, limit: int | None, warm_up: Path) -> dict:
    command = [sys.executable, __file__, "--child", tool, str(path), "--warm-up", str(warm_up)]
    if limit is not None:
        command += ["--limit", str(limit)]
    return _measure(command, capture_stdout=True)


def _child_tshark(path: Path) -> dict:
    command = ["tshark", "-n", "-r", str(path), "-T", "fields"]
    for field in TSHARK_FIELDS:
        command += ["-e", field]
    result = _measure(command, capture_stdout=False)
    result["frames"] = None  # counted by the caller from the file
    return result


# Runs a tool and reports its resource usage. Linux keeps ru_maxrss across
# fork and exec, so a tool started straight from this (large) process would
# report this process's peak. Started from this small launcher, it reports its own.
LAUNCHER = """
import json, os, subprocess, sys, time
command = json.loads(sys.argv[1])
started = time.perf_counter()
process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(process.pid, 0)
sys.stderr.write(json.dumps({
    "exit": os.waitstatus_to_exitcode(status),
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "wall_s": time.perf_counter() - started,
    "maxrss_kib": usage.ru_maxrss,
}))
"""


def _measure(command: list[str], *, capture_stdout: bool) -> dict:
    """Run ``command`` through the launcher; return its CPU time, wall time, peak RSS and JSON output."""
    with tempfile.TemporaryFile() as output:
        launched = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, json.dumps(command)],
            stdout=output if capture_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)},
            check=True,
        )
        output.seek(0)
        text = output.read().decode()
    usage = json.loads(launched.stderr)
    if usage["exit"] != 0:
        raise RuntimeError(f"{command[:4]} failed with exit status {usage['exit']}")
    result = {"cpu_s": usage["cpu_s"], "wall_s": usage["wall_s"]}
    if capture_stdout:
        result.update(json.loads(text))  # the child's own timing of its decoding loop
    result["peak_rss_mib"] = usage["maxrss_kib"] / 1024  # ru_maxrss is in KiB on Linux
    return result


def _count_frames(path: Path) -> int:
    completed = subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True, check=True)
    for line in completed.stdout.splitlines():
        if "Number of packets" in line:
            return int(line.split(":")[1].strip())
    raise RuntimeError(f"capinfos printed no packet count for {path}")


def _largest_shared_capture() -> Path | None:
    if not SHARED_CAPTURES.is_dir():
        return None
    captures = [p for p in SHARED_CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap")]
    return max(captures, key=lambda p: p.stat().st_size) if captures else None


def _cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _rate(frames: int, seconds: float) -> str:
    # A start-up correction larger than the run leaves no measurable time.
    return f"{frames / seconds:,.0f}" if seconds > 0 else "n/a"


def _row(label: str, tool: str, frames: int, result: dict, note: str = "") -> str:
    return (
        f"| {label} | {tool} | {frames:,} | {_rate(frames, result['cpu_s'])} | "
        f"{_rate(frames, result['wall_s'])} | {result['peak_rss_mib']:,.0f} | {note} |"
    )


def _run_tool(tool: str, path: Path, total: int, pyshark_frames: int, one_frame: Path) -> dict:
    if tool == "tshark":
        result = _child_tshark(path)
        result["frames"] = total
        return result
    return _child_python(tool, path, pyshark_frames if tool == "pyshark" else None, one_frame)


def _median_run(tool: str, path: Path, total: int, pyshark_frames: int, one_frame: Path, repeat: int) -> dict:
    """Run ``tool`` ``repeat`` times, each in a new process; return the run of median CPU time.

    The peak RSS reported is the largest of all runs.
    """
    runs = [_run_tool(tool, path, total, pyshark_frames, one_frame) for _ in range(repeat)]
    runs.sort(key=lambda run: run["cpu_s"])
    median = dict(runs[len(runs) // 2])
    median["peak_rss_mib"] = max(run["peak_rss_mib"] for run in runs)
    return median


def benchmark(path: Path, label: str, tools: list[str], pyshark_frames: int, repeat: int = 1) -> list[str]:
    rows = []
    total = _count_frames(path)
    print(f"{label}: {path.name}, {total:,} frames, {path.stat().st_size / 2**20:,.1f} MiB", file=sys.stderr)
    # The one-frame copy goes to a folder of its own: the capture's folder may be shared or read-only.
    scratch = tempfile.TemporaryDirectory(prefix="netae-bench-one-frame-")
    one_frame = Path(scratch.name) / "one-frame.pcap"
    subprocess.run(["editcap", "-F", "pcap", "-r", str(path), str(one_frame), "1"], check=True, capture_output=True)
    results = {}
    for tool in tools:
        result = _median_run(tool, path, total, pyshark_frames, one_frame, repeat)
        if tool == "tshark":
            start_up = [_run_tool(tool, one_frame, 1, pyshark_frames, one_frame) for _ in range(3)]
            result["cpu_s"] -= min(run["cpu_s"] for run in start_up)
            result["wall_s"] -= min(run["wall_s"] for run in start_up)
        results[tool] = result
        note = f"first {result['frames']:,} frames" if result["frames"] < total else ""
        rows.append(_row(label, tool, result["frames"], result, note))
        print(rows[-1], file=sys.stderr)
    if "netae" in results and "tshark" in results and results["tshark"]["cpu_s"] > 0:
        netae = results["netae"]["frames"] / results["netae"]["cpu_s"]
        tshark = results["tshark"]["frames"] / results["tshark"]["cpu_s"]
        rows.append(f"| {label} | netae / tshark per core | | {netae / tshark:,.1f}x | | | |")
    scratch.cleanup()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic-frames", type=int, default=2_000_000,
                        help="frames in the synthetic capture, 0 for none (default 2,000,000)")
    parser.add_argument("--capture", action="append", metavar="PATH",
                        help="a capture to benchmark instead of the largest one in ../shared/captures; repeatable")
    parser.add_argument("--pyshark-frames", type=int, default=3_000,
                        help="frames pyshark reads from each capture (default 3,000)")
    parser.add_argument("--tools", default="netae,tshark,dpkt,pyshark",
                        help="comma-separated tools to run, from netae, tshark, dpkt and pyshark (default all four)")
    parser.add_argument("--large", action="store_true",
                        help=f"also decode a synthetic capture of {LARGE_CAPTURE_FRAMES:,} frames "
                             "(above 2 GiB) with netae, to check peak memory")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each tool per capture, each in a new process; the table shows "
                             "the run of median CPU time (default 3)")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warm-up", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")

    if args.child:
        tool, path = args.child
        # Imports and first-call set-up (Arrow compute kernels, numpy) are
        # start-up, not decoding: read the one-frame copy once before timing.
        importlib.import_module(TOOL_MODULES[tool])
        if args.warm_up:
            PYTHON_TOOLS[tool](args.warm_up, 1)
        started_wall = time.perf_counter()
        started_cpu = _process_cpu_s()
        frames = PYTHON_TOOLS[tool](path, args.limit)
        cpu_s = _process_cpu_s() - started_cpu
        print(json.dumps({"frames": frames, "cpu_s": cpu_s, "wall_s": time.perf_counter() - started_wall}))
        return

    tools = [tool.strip() for tool in args.tools.split(",") if tool.strip()]
    unknown = sorted(set(tools) - {"netae", "tshark", *PYTHON_TOOLS})
    if unknown or not tools:
        parser.error(f"--tools must name some of netae, tshark, dpkt, pyshark; got {args.tools!r}")
    if args.synthetic_frames < 0:
        parser.error(f"--synthetic-frames must be 0 or more, got {args.synthetic_frames}")
    for capture in args.capture or []:
        if not Path(capture).is_file():
            parser.error(f"--capture {capture}: file not found")
    lines = [
        f"Machine: {os.cpu_count()} cores, {_cpu_model()}; Python {platform.python_version()}.",
        f"Command: python bench/bench_decode.py {' '.join(sys.argv[1:])}".rstrip(),
        "",
        "| capture | tool | frames | frames/s per core | frames/s wall | peak RSS MiB | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    captures = [Path(path) for path in args.capture or []]
    largest = _largest_shared_capture()
    if not captures and largest is not None:
        captures = [largest]
    for capture in captures:
        lines += benchmark(capture, capture.name, tools, args.pyshark_frames, args.repeat)
    with tempfile.TemporaryDirectory(prefix="netae-bench-") as folder:
        if args.synthetic_frames:
            synthetic = Path(folder) / "synthetic.pcap"
            write_synthetic_pcap(synthetic, args.synthetic_frames)
            lines += benchmark(synthetic, f"synthetic {args.synthetic_frames:,}", tools, args.pyshark_frames, args.repeat)
            synthetic.unlink()
        if args.large:
            large = Path(folder) / "large.pcap"
            size = write_synthetic_pcap(large, LARGE_CAPTURE_FRAMES)
            lines += benchmark(large, f"synthetic {size / 2**30:.2f} GiB", ["netae"], args.pyshark_frames)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
