"""Wireshark's Info column for chosen frames, for drill-down from a report.

The Info column is Wireshark's one-line summary of a frame ("Standard query
0x1a2b A example.org"). The decoder does not produce it, so the few frames an
analyst opens are dissected by Wireshark itself through pyshark, in summary
mode (tshark ``-T psml``), which carries the packet-list columns.

pyshark 0.6's summary parser looks for the PSML header again before every
packet, so it drops every packet after the first. ``_SummaryParser`` reads the
header once. Each lookup runs in a worker thread with an event loop of its
own, which is closed afterwards. pyshark drives tshark through asyncio, and a
caller that already runs a loop (a Prefect task, a notebook) cannot run a
second one in its own thread. The call blocks the calling thread, so a
coroutine that must stay responsive calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyshark
from pyshark.capture.capture import TSharkCrashException
from pyshark.tshark.output_parser.base_parser import BaseTsharkOutputParser
from pyshark.tshark.output_parser.tshark_xml import TsharkXmlParser

logger = logging.getLogger(__name__)

# Frames per tshark run: a display filter with thousands of set members is
# slow to compile, so long requests are split.
FRAMES_PER_RUN = 500
# Seconds given to tshark to exit by itself after its output ends, before it is killed.
TSHARK_EXIT_WAIT_S = 5


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
        info.update(_read_in_worker(tshark, capture, chunk, timeout_s))
    return info


class _SummaryParser(TsharkXmlParser):
    """pyshark's PSML parser, reading the ``<structure>`` header only once."""

    async def get_packets_from_stream(self, stream, existing_data, got_first_packet=True):
        if self._psml_structure is None:
            existing_data += await self._get_psml_struct(stream)
        return await BaseTsharkOutputParser.get_packets_from_stream(
            self, stream, existing_data, got_first_packet=got_first_packet
        )


class _SummaryCapture(pyshark.FileCapture):
    """A pyshark file capture in summary mode that uses ``_SummaryParser``."""

    def _setup_tshark_output_parser(self):
        return _SummaryParser(parse_summaries=True)

    async def _cleanup_subprocess(self, process):
        # After its last packet tshark exits by itself, and asyncio's child watcher
        # reaps it. Killing it first races the watcher, because Popen.kill polls
        # and may reap the process the watcher waits for.
        if process.returncode is None and self._eof_reached:
            try:
                await asyncio.wait_for(process.wait(), TSHARK_EXIT_WAIT_S)
            except TimeoutError:
                pass
        await super()._cleanup_subprocess(process)


def _read_in_worker(tshark: str, capture: Path, frames: list[int], timeout_s: float) -> dict[int, str]:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netae-drilldown") as worker:
        return worker.submit(_read_summaries, tshark, capture, frames, timeout_s).result()


def _read_summaries(tshark: str, capture: Path, frames: list[int], timeout_s: float) -> dict[int, str]:
    display_filter = "frame.number in {" + ", ".join(str(number) for number in frames) + "}"
    info: dict[int, str] = {}

    def keep(packet) -> None:
        info[int(packet.no)] = packet.info

    loop = asyncio.new_event_loop()
    try:
        summaries = _SummaryCapture(
            str(capture), only_summaries=True, keep_packets=False, display_filter=display_filter,
            tshark_path=tshark, eventloop=loop,
        )
        try:
            # On timeout, pyshark kills and reaps tshark before the error arrives.
            summaries.apply_on_packets(keep, timeout=timeout_s)
        except TimeoutError as error:
            raise TimeoutError(
                f"tshark did not finish reading {capture} within {timeout_s} s; "
                "raise timeout_s or ask for fewer frames"
            ) from error
        except TSharkCrashException:
            pass  # judged below from tshark's own message
        finally:
            _close(summaries, loop)
    finally:
        loop.close()

    # pyshark may reap tshark before its exit status is known, so failure is
    # read from tshark's last message. A capture cut short is not a failure:
    # the frames before the cut were printed and are kept.
    message = summaries._last_error_line or ""
    if message.startswith("tshark:") and "cut short" not in message:
        raise RuntimeError(f"tshark failed to read {capture}: {message[-500:]}")
    logger.debug("tshark returned Info for %d of %d frames of %s", len(info), len(frames), capture)
    return info


def _close(summaries: _SummaryCapture, loop: asyncio.AbstractEventLoop) -> None:
    """Kill and reap every tshark of ``summaries`` while ``loop`` is still open.

    pyshark's ``close_async`` raises at a tshark that exited with an error and
    leaves it in its list. Its finalizer would later close it again on the
    closed loop, so the list is emptied here once every process has exited.
    """
    try:
        loop.run_until_complete(summaries.close_async())
    except TSharkCrashException:
        pass  # judged by the caller from tshark's own message
    for process in list(summaries._running_processes):
        if process.returncode is None:
            process.kill()
            loop.run_until_complete(process.wait())
    summaries._running_processes.clear()
