"""Fuzz the capture decoder for a bounded time with atheris (coverage-guided libFuzzer).

The harness feeds each input to ``CaptureDecoder`` as an in-memory stream and
checks the decoder's contract:

* ``batches()`` raises nothing for damaged input; every fault ends up in
  ``summary.error`` as a ``CaptureError`` that names the file;
* the rows match ``summary.frames``; frame numbers increase, and run 1..n
  in pcap and pcapng input (a filtered CSV export keeps Wireshark's gaps);
* one input decodes within ``--input-timeout`` seconds, so a loop that never
  ends is reported as a timeout, not a hang.

Usage::

    python bench/fuzz_decoder.py                      # 60 s with atheris
    python bench/fuzz_decoder.py --seconds 600 --artifacts /tmp/fuzz-crashes
    python bench/fuzz_decoder.py --random             # no atheris: seeded random mutation

Seeds are the shared field cases and small captures (``../shared`` beside the
repository, where present) plus a few built-in headers, copied into a temporary
folder that libFuzzer may extend. A crashing input is written to the artifacts
folder as ``crash-<sha1>``; turn each one into a test in
``tests/reliability/test_fuzz_findings.py``.

atheris 3.0.0 was used (``pip install atheris``); it ships libFuzzer in its
wheel and needs no compiler.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import random
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
FUZZ_FILE_NAME = "fuzz-input.pcap"
MAX_SEED_BYTES = 16_384
MAX_INPUT_BYTES = 8_192

sys.path.insert(0, str(REPO_ROOT))


class ContractViolation(AssertionError):
    """The decoder broke its contract on one input."""


def check_decode(data: bytes) -> None:
    """Decode ``data`` and raise ``ContractViolation`` when the decoder breaks its contract.

    Any exception other than ``ContractViolation`` that escapes is itself a
    finding: ``batches()`` must not raise for damaged input.
    """
    from spark_jobs.decoder import CaptureDecoder, CaptureError

    decoder = CaptureDecoder(io.BytesIO(data), capture_id="fuzz", name=FUZZ_FILE_NAME, batch_frames=64)
    numbers: list[int] = []
    for batch in decoder.batches():
        numbers.extend(batch.column("frame_number").to_pylist())

    summary = decoder.summary
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:])):
        raise ContractViolation(f"frame numbers do not increase: {numbers[:8]}...")
    # A filtered Wireshark CSV export keeps its gaps; capture files number every frame.
    if summary.format != "csv" and numbers != list(range(1, len(numbers) + 1)):
        raise ContractViolation(f"frame numbers are not 1..{len(numbers)}: {numbers[:8]}...")
    rows = len(numbers)
    if summary.frames != rows:
        raise ContractViolation(f"summary counts {summary.frames} frames, batches held {rows}")
    if summary.error is not None:
        if not isinstance(summary.error, CaptureError):
            raise ContractViolation(f"summary.error is a {type(summary.error).__name__}, not a CaptureError")
        if FUZZ_FILE_NAME not in str(summary.error):
            raise ContractViolation(f"error does not name the file: {summary.error}")


def builtin_seeds() -> dict[str, bytes]:
    """Minimal valid headers of each format, so fuzzing starts even without the shared folders."""
    ethernet_frame = bytes(12) + b"\x08\x00" + b"\x45\x00\x00\x1c" + bytes(16) + bytes(8)
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    pcap += struct.pack("<IIII", 1, 0, len(ethernet_frame), len(ethernet_frame)) + ethernet_frame
    shb = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20)
    padded = ethernet_frame + bytes((-len(ethernet_frame)) % 4)
    epb_len = 32 + len(padded)
    epb = struct.pack("<IIIIIII", 6, epb_len, 0, 0, 1, len(ethernet_frame), len(ethernet_frame)) + padded
    epb += struct.pack("<I", epb_len)
    csv = b'"No.","Time","Source","Destination","Protocol","Length","Info"\n"1","0.000000","10.0.0.1","10.0.0.2","TCP","60","x"\n'
    return {"builtin.pcap": pcap, "builtin.pcapng": shb + idb + epb, "builtin.csv": csv}


def write_seeds(folder: Path) -> int:
    """Copy the small shared captures and the built-in seeds into ``folder``; return how many."""
    count = 0
    for name, payload in builtin_seeds().items():
        (folder / name).write_bytes(payload)
        count += 1
    for source in ("cases", "captures"):
        shared = SHARED_DIR / source
        if not shared.is_dir():
            continue
        for path in sorted(shared.iterdir()):
            if path.is_file() and path.suffix != ".md" and path.stat().st_size <= MAX_SEED_BYTES:
                shutil.copyfile(path, folder / f"{source}-{path.name}")
                count += 1
    return count


def run_atheris(seconds: int, input_timeout_s: int, seeds_dir: Path, artifacts_dir: Path) -> None:
    """Run libFuzzer through atheris; it exits the process when done or on the first crash."""
    import atheris

    with atheris.instrument_imports():
        import spark_jobs.decoder  # noqa: F401 - instrumented for coverage feedback

    arguments = [
        sys.argv[0],
        f"-max_total_time={seconds}",
        f"-timeout={input_timeout_s}",
        f"-max_len={MAX_INPUT_BYTES}",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={artifacts_dir}/",
        "-print_final_stats=1",
        str(seeds_dir),
    ]
    atheris.Setup(arguments, check_decode)
    atheris.Fuzz()


def run_random(seconds: int, input_timeout_s: int, seeds_dir: Path, artifacts_dir: Path, seed: int) -> int:
    """Mutate the seeds at random for ``seconds``; return the number of crashing inputs saved."""
    rng = random.Random(seed)
    seeds = [path.read_bytes() for path in sorted(seeds_dir.iterdir())]
    deadline = time.monotonic() + seconds
    executions = crashes = 0
    while time.monotonic() < deadline:
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data)) if data else 0
            if rng.random() < 0.6 and data:
                data[position] = rng.randrange(256)
            elif rng.random() < 0.5:
                data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            else:
                del data[position:position + rng.randint(1, 16)]
        payload = bytes(data[:MAX_INPUT_BYTES])

        started = time.monotonic()
        try:
            check_decode(payload)
            elapsed_s = time.monotonic() - started
            if elapsed_s > input_timeout_s:
                raise ContractViolation(f"one input took {elapsed_s:.1f} s, more than {input_timeout_s} s")
        except Exception as error:  # noqa: BLE001 - every escape is a finding
            crashes += 1
            path = artifacts_dir / f"crash-{hashlib.sha1(payload, usedforsecurity=False).hexdigest()}"
            path.write_bytes(payload)
            logging.getLogger("fuzz_decoder").error("%s: %s: %s", path, type(error).__name__, error)
        executions += 1
    logging.getLogger("fuzz_decoder").info(
        "random mutation: %d inputs in %d s, %d crash(es) saved in %s", executions, seconds, crashes, artifacts_dir
    )
    return crashes


def main() -> int:
    """Parse options, write the seeds and fuzz."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="total fuzzing time in seconds (default 60)")
    parser.add_argument("--input-timeout", type=int, default=10, help="seconds one input may take (default 10)")
    parser.add_argument("--artifacts", type=Path, default=None, help="folder for crashing inputs (default: a temp folder)")
    parser.add_argument("--random", action="store_true", help="seeded random mutation instead of atheris")
    parser.add_argument("--seed", type=int, default=1, help="seed of --random (default 1)")
    options = parser.parse_args()
    if options.seconds < 1 or options.input_timeout < 1:
        parser.error("--seconds and --input-timeout must be at least 1")

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    # The decoder logs a warning for every damaged input; the findings are what matter here.
    logging.getLogger("spark_jobs").setLevel(logging.CRITICAL)

    seeds_dir = Path(tempfile.mkdtemp(prefix="netae-fuzz-seeds-"))
    artifacts_dir = options.artifacts or Path(tempfile.mkdtemp(prefix="netae-fuzz-artifacts-"))
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    count = write_seeds(seeds_dir)
    logging.getLogger("fuzz_decoder").info("%d seeds in %s; crashing inputs go to %s", count, seeds_dir, artifacts_dir)

    if options.random:
        return 1 if run_random(options.seconds, options.input_timeout, seeds_dir, artifacts_dir, options.seed) else 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        parser.error("atheris is not installed: pip install atheris, or run with --random")
    run_atheris(options.seconds, options.input_timeout, seeds_dir, artifacts_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
