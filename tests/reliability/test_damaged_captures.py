"""Damaged and unusual captures: each is decoded or rejected with a CaptureError, never a crash.

The corpus (see ``tests/corpus/derive.py``) holds the shared field cases plus
files derived from them and from small real captures at test time: truncations
at many offsets, corrupted length fields, flipped bytes, random mutations and
damaged gzip streams.
"""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from objectstore import open_store
from spark_jobs.captures import discover_captures
from spark_jobs.decoder import CaptureError, decode_to_table
from spark_jobs.extract_packets import extract_packets
from spark_jobs.packet_schema import PACKET_SCHEMA
from tests.corpus.derive import (
    PCAP_FILE_HEADER_BYTES,
    complete_frames_before,
    derive_corpus,
    pcap_record_offsets,
    pcapng_blocks,
)

MIN_CORPUS_FILES = 40
# The batch test runs every shared case and every 8th derived file: one Spark
# task per capture costs about a second on 2 cores, too slow for all of them.
BATCH_SAMPLE_STRIDE = 8


@pytest.fixture(scope="module")
def corpus(shared_cases, shared_captures, tmp_path_factory):
    """The derived corpus, written into a temporary folder."""
    return derive_corpus(shared_cases, shared_captures, tmp_path_factory.mktemp("corpus"))


def _decode(item):
    return decode_to_table(str(item.path), capture_id="corpus", name=item.path.name)


def test_corpus_holds_every_kind_of_damage(corpus):
    kinds = {item.kind for item in corpus}

    assert len(corpus) >= MIN_CORPUS_FILES
    assert kinds == {"case", "truncated", "length", "flipped", "mutated", "gzip"}


def test_every_file_decodes_or_reports_capture_error(corpus):
    failures = []
    for item in corpus:
        try:
            table, summary = _decode(item)
        except Exception as error:  # noqa: BLE001 - every escape is a finding, listed below
            failures.append(f"{item.path.name}: raised {type(error).__name__}: {error}")
            continue

        if table.schema != PACKET_SCHEMA:
            failures.append(f"{item.path.name}: table schema differs from PACKET_SCHEMA")
        numbers = table.column("frame_number").to_pylist()
        if numbers != list(range(1, len(numbers) + 1)):
            failures.append(f"{item.path.name}: frame numbers are not 1..{len(numbers)}")
        if summary.frames != table.num_rows:
            failures.append(f"{item.path.name}: summary counts {summary.frames} frames, table has {table.num_rows}")
        if summary.error is not None and not isinstance(summary.error, CaptureError):
            failures.append(f"{item.path.name}: error of type {type(summary.error).__name__}")
        if summary.error is not None and item.path.name not in str(summary.error):
            failures.append(f"{item.path.name}: error does not name the file: {summary.error}")

    assert failures == []


def test_rejected_files_name_offset_or_frame(corpus):
    for item in corpus:
        _table, summary = _decode(item)
        if summary.error is None:
            continue

        assert summary.error.byte_offset is not None or summary.error.frame_number is not None, item.path.name
        assert summary.error.action, item.path.name


def test_truncated_copy_keeps_every_complete_frame(corpus):
    originals = {}
    for item in corpus:
        if item.kind != "truncated":
            continue
        if item.source not in originals:
            originals[item.source], _ = decode_to_table(str(item.source), capture_id="corpus", name=item.path.name)
        original = originals[item.source]

        table, summary = _decode(item)
        expected_frames = complete_frames_before(item.source.read_bytes(), item.cut_at_bytes)

        assert table.num_rows == expected_frames, item.path.name
        assert table.equals(original.slice(0, expected_frames)), item.path.name
        if summary.error is None and table.num_rows:
            assert pc.max(table.column("frame_number")).as_py() == expected_frames


def _record_ends(data: bytes) -> set[int]:
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return {offset + total for offset, _type, total in pcapng_blocks(data)}
    return {PCAP_FILE_HEADER_BYTES} | {offset + total for offset, total in pcap_record_offsets(data)}


def test_cut_inside_record_is_marked_truncated(corpus):
    for item in corpus:
        if item.kind != "truncated":
            continue
        ends = _record_ends(item.source.read_bytes())
        _table, summary = _decode(item)

        if item.cut_at_bytes in ends:
            assert summary.truncated is False, item.path.name
            assert summary.error is None, item.path.name
        else:
            assert summary.truncated or summary.error is not None, item.path.name


def test_batch_gives_every_capture_status(corpus, spark, tmp_path):
    store = open_store(f"file://{tmp_path / 'store'}")
    derived = [item for item in corpus if item.kind != "case"]
    batch = [item for item in corpus if item.kind == "case"] + derived[::BATCH_SAMPLE_STRIDE]
    assert len(batch) >= MIN_CORPUS_FILES
    for item in batch:
        store.put_file(f"captures/{item.kind}/{item.path.name}", str(item.path))
    refs = discover_captures(store, "captures/")

    statuses = extract_packets(spark, store, refs, output_prefix="lake/packets/", run_id="corpus")

    assert [status.key for status in statuses] == [ref.key for ref in refs]
    unexpected = [status.error for status in statuses if status.error and "failed unexpectedly" in status.error]
    assert unexpected == []
    for status in statuses:
        file_name = status.key.rsplit("/", 1)[1]
        if status.decoded:
            assert status.frames > 0 and status.parts, status.key
        else:
            assert status.error and file_name in status.error, status.key
    assert any(status.decoded for status in statuses)
    assert any(not status.decoded for status in statuses)
