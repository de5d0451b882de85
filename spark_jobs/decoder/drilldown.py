"""Wireshark's Info column for chosen frames, for drill-down from a report.

The Info column is Wireshark's one-line summary of a frame ("Standard query
0x1a2b A example.org"). The decoder does not produce it, so the few frames an
analyst opens are looked up with tshark.

NOTE: pyshark 0.6 cannot deliver this column with tshark 4.0: its JSON mode
(``use_json=True``) parses tshark's ``-T json`` output, which carries no
columns, and its summary mode (``only_summaries=True``) loses packets. This
module therefore runs tshark itself with ``-T fields -e _ws.col.Info``. It
uses no event loop, so it is safe to call from inside a running asyncio loop.
It blocks the calling thread, so a coroutine that must stay responsive calls
it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

# Frames per tshark run: a display filter with thousands of set members is
# slow to compile, so long requests are split.
FRAMES_PER_RUN = 500


def _validated_frames(frame_numbers: list[int]) -> list[int]:
    if not frame_numbers:
        raise ValueError("frame_numbers must hold at least one frame number, got an empty list")
    for number in frame_numbers:
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"frame_numbers must be integers of at least 1, got {number!r}")
    return sorted(set(frame_numbers))


def _validated_path(path: str | os.PathLike) -> Path:
    text = os.fspath(path)
    if text.startswith("-"):
        raise ValueError(
            f"capture path {text!r} starts with '-', which tshark would read as an option; "
            "rename the file or pass it with a directory prefix such as './'"
        )
    resolved = Path(text).resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"capture file not found: {resolved}")
    return resolved


def wireshark_info(path: str | os.PathLike, frame_numbers: list[int], *, timeout_s: float = 60) -> dict[int, str]:
    """Return Wireshark's Info column for the given frames of a capture.

    Args:
        path: Capture file. It is passed to tshark as an absolute path, so it
            can never be read as an option.
        frame_numbers: 1-based frame numbers, as in the packet table.
        timeout_s: Limit for each tshark run, seconds; tshark is killed when
            it runs longer.

    Returns:
        Frame number -> Info text. Frames that the capture does not have are
        absent.

    Raises:
        ValueError: A frame number is below 1 or not an integer, the list is
            empty, or the path starts with '-'.
        FileNotFoundError: The capture does not exist, or tshark is not installed.
        TimeoutError: tshark ran longer than ``timeout_s``.
        RuntimeError: tshark failed to read the capture.
    """
    frames = _validated_frames(frame_numbers)
    capture = _validated_path(path)
    tshark = shutil.which("tshark")
    if tshark is None:
        raise FileNotFoundError("tshark is not installed; install the Debian package 'tshark'")

    info: dict[int, str] = {}
    for first in range(0, len(frames), FRAMES_PER_RUN):
        chunk = frames[first:first + FRAMES_PER_RUN]
        info.update(_run_tshark(tshark, capture, chunk, timeout_s))
    return info


def _run_tshark(tshark: str, capture: Path, frames: list[int], timeout_s: float) -> dict[int, str]:
    display_filter = "frame.number in {" + ", ".join(str(number) for number in frames) + "}"
    command = [
        tshark, "-n", "-r", str(capture), "-Y", display_filter,
        "-T", "fields", "-E", "separator=/t", "-e", "frame.number", "-e", "_ws.col.Info",
    ]
    try:
        # subprocess.run kills and reaps tshark on timeout and closes its pipes.
        completed = subprocess.run(
            command, capture_output=True, text=True, encoding="utf-8", errors="replace",
            timeout=timeout_s, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise TimeoutError(
            f"tshark did not finish reading {capture} within {timeout_s} s; "
            "raise timeout_s or ask for fewer frames"
        ) from error

    # Exit status 2 with this message means a capture cut short: the frames
    # before the cut are still printed.
    cut_short = completed.returncode == 2 and "cut short" in completed.stderr
    if completed.returncode != 0 and not cut_short:
        raise RuntimeError(
            f"tshark failed to read {capture} (exit status {completed.returncode}): "
            f"{completed.stderr.strip()[-500:]}"
        )

    info: dict[int, str] = {}
    for line in completed.stdout.splitlines():
        number, _, text = line.partition("\t")
        if number.isdigit():
            info[int(number)] = text
    logger.debug("tshark returned Info for %d of %d frames of %s", len(info), len(frames), capture)
    return info
