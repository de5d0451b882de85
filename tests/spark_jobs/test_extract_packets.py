"""The Spark extraction job: partitions per capture, reruns, chunked decoding, bad captures."""

from __future__ import annotations

import pyarrow as pa
import pytest

from bench.synthetic_capture import write_synthetic_pcap
from objectstore import open_store
from spark_jobs.captures import capture_ref_for_key
from spark_jobs.extract_packets import extract_packets, list_partition_parts, read_packet_table

COMPARED = ["frame_number", "timestamp_ns", "inter_arrival_ns", "frame_len", "cap_len", "src_addr", "dst_addr", "src_port", "dst_port", "ip_proto"]


def _table(spark, store, capture_ids) -> pa.Table:
    frame = read_packet_table(spark, store, output_prefix="lake/packets/", capture_ids=capture_ids)
    return pa.Table.from_pandas(frame.toPandas()).sort_by("frame_number")


@pytest.fixture()
def store(tmp_path):
    return open_store(f"file://{tmp_path / 'store'}")


def test_chunked_decode_matches_whole_decode(spark, store, tmp_path):
    path = tmp_path / "synthetic.pcap"
    write_synthetic_pcap(path, 20_000, seed=3)
    store.put_file("captures/synthetic.pcap", str(path))
    ref = capture_ref_for_key(store, "captures/synthetic.pcap")

    whole = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="whole", chunk_bytes=1 << 40)[0]
    whole_table = _table(spark, store, [ref.capture_id])
    chunked = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="chunked", chunk_bytes=300_000)[0]
    chunked_table = _table(spark, store, [ref.capture_id])

    assert len({key.rsplit("-", 2)[1] for key in chunked.parts}) > 3
    assert whole.frames == chunked.frames == 20_000
    assert chunked_table.num_rows == 20_000
    assert chunked_table.select(COMPARED).equals(whole_table.select(COMPARED))


def test_rerun_replaces_partition_without_duplicates(spark, store, demo_sample):
    store.put_file("captures/demo.pcapng", str(demo_sample / "demo.pcapng"))
    ref = capture_ref_for_key(store, "captures/demo.pcapng")
    first = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="r1")[0]
    extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="r2")
    parts = list_partition_parts(store, "lake/packets/", [ref.capture_id])
    assert parts and all("-r2-" in key for key in parts)
    assert [key for key in store.iter_keys("lake/packets/") if key.endswith(".parquet")] == parts
    assert read_packet_table(spark, store, output_prefix="lake/packets/", capture_ids=[ref.capture_id]).count() == first.frames


def test_truncated_capture_in_chunks_keeps_complete_frames(spark, store, shared_captures):
    key = "captures/truncated.pcap"
    store.put_file(key, str(shared_captures / "truncated-cut-mid-packet-http.pcap"))
    ref = capture_ref_for_key(store, key)
    status = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="t", chunk_bytes=500_000)[0]
    assert status.decoded and status.truncated
    assert status.frames == 2696
    assert len(status.parts) > 1


def test_unreadable_capture_keeps_earlier_partition(spark, store, demo_sample, shared_cases):
    key = "captures/changing.pcap"
    store.put_file(key, str(demo_sample / "demo.pcapng"))
    ref = capture_ref_for_key(store, key)
    good = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="good")[0]
    store.put_file(key, str(shared_cases / "not-a-capture.pcap"))
    bad = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="bad")[0]
    assert "changing.pcap" in bad.error
    assert not bad.decoded
    assert list_partition_parts(store, "lake/packets/", [ref.capture_id]) == good.parts


def test_binary_labels_file_sets_capture_aside(spark, store, demo_sample):
    store.put_file("captures/demo.pcapng", str(demo_sample / "demo.pcapng"))
    store.put_bytes("captures/demo.labels.csv", b"first_frame,last_frame,label\n\xff\xfe1,2,anomaly\n")
    ref = capture_ref_for_key(store, "captures/demo.pcapng")
    status = extract_packets(spark, store, [ref], output_prefix="lake/packets/", run_id="l")[0]
    assert not status.decoded
    assert status.error.startswith("invalid labels file:")
    assert "not UTF-8 text at byte 29" in status.error
    assert list_partition_parts(store, "lake/packets/", [ref.capture_id]) == []
