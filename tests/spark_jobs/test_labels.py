"""Labels files: parsing, errors, and frame labelling."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.captures import capture_id_for_key, labels_key_for
from spark_jobs.labels import LabelsError, label_frames, label_packets, parse_labels, parse_time_ns


def test_ranges_label_inclusive_frames():
    ranges = parse_labels("first_frame,last_frame,label,attack\n3,4,anomaly,scan\n", source="x.labels.csv")
    assert label_frames(np.arange(1, 7), ranges).tolist() == [0, 0, 1, 1, 0, 0]


def test_later_normal_row_overrides_anomaly():
    text = "first_frame,last_frame,label,attack\n1,5,anomaly,a\n3,3,normal,\n"
    assert label_frames(np.arange(1, 6), parse_labels(text, source="f")).tolist() == [1, 1, 0, 1, 1]


@pytest.mark.parametrize(
    "text,message",
    [
        ("first,last\n1,2\n", "f.csv: missing column"),
        ("first_frame,last_frame,label\nx,2,anomaly\n", "f.csv, line 2: frame numbers must be integers"),
        ("first_frame,last_frame,label\n5,2,anomaly\n", "f.csv, line 2: invalid range 5-2"),
        ("first_frame,last_frame,label\n0,2,anomaly\n", "f.csv, line 2: invalid range 0-2"),
        ("first_frame,last_frame,label\n1,2,evil\n", "f.csv, line 2: invalid label 'evil'"),
    ],
)
def test_malformed_labels_name_file_and_line(text, message):
    with pytest.raises(LabelsError, match=message):
        parse_labels(text, source="f.csv")


def test_labels_file_sits_beside_capture():
    assert labels_key_for("captures/demo/demo.pcapng") == "captures/demo/demo.labels.csv"
    assert labels_key_for("a.pcap.gz") == "a.labels.csv"


def test_capture_id_is_stable_and_distinct_per_key():
    assert capture_id_for_key("captures/a/x.pcap") == capture_id_for_key("captures/a/x.pcap")
    assert capture_id_for_key("captures/a/x.pcap") != capture_id_for_key("captures/b/x.pcap")
    assert capture_id_for_key("captures/we<ird> name.pcap").startswith("we_ird_name-")


HOST_HEADER = "host,start_time,end_time,label,attack\n"
T0_NS = 1_733_300_000 * 1_000_000_000


def _label_hosts(text, *, times_s, sources, destinations):
    ranges = parse_labels(text, source="hosts.labels.csv")
    times = np.asarray([T0_NS + int(seconds * 1e9) for seconds in times_s], dtype=np.int64)
    frames = np.arange(1, len(times) + 1)
    return label_packets(frames, times, np.asarray(sources, dtype=object), np.asarray(destinations, dtype=object), ranges).tolist()


def test_host_range_labels_host_frames_in_time():
    text = HOST_HEADER + "10.0.0.9,1733300010,1733300020,anomaly,scan\n"
    labels = _label_hosts(
        text,
        times_s=[5, 10, 15, 20, 21, 15],
        sources=["10.0.0.9", "10.0.0.9", "10.0.0.1", "10.0.0.9", "10.0.0.9", "10.0.0.1"],
        destinations=["10.0.0.1", "10.0.0.1", "10.0.0.9", "10.0.0.1", "10.0.0.1", "10.0.0.2"],
    )
    assert labels == [0, 1, 1, 1, 0, 0]


def test_host_range_accepts_iso_times_and_canonical_ipv6():
    text = HOST_HEADER + "2001:DB8::0009,2024-12-04T08:13:30Z,2024-12-04T09:13:30+01:00,anomaly,\n"
    ranges = parse_labels(text, source="f")
    assert ranges[0].host == "2001:db8::9"
    assert ranges[0].start_ns == T0_NS + 10 * 1_000_000_000
    assert ranges[0].end_ns == T0_NS + 10 * 1_000_000_000


def test_epoch_seconds_keep_nanoseconds():
    assert parse_time_ns("1733300000.000000123") == T0_NS + 123


def test_iso_time_without_offset_reads_as_utc():
    assert parse_time_ns("2024-12-04T08:13:20") == T0_NS


def test_frame_and_host_rows_apply_in_file_order():
    frame_ranges = parse_labels("first_frame,last_frame,label,attack\n1,3,anomaly,a\n", source="f")
    host_ranges = parse_labels(HOST_HEADER + "10.0.0.1,0,9999999999,normal,\n", source="g")
    times = np.full(3, T0_NS)
    sources = np.asarray(["10.0.0.1", "10.0.0.2", None], dtype=object)
    destinations = np.asarray(["10.0.0.2", "10.0.0.3", None], dtype=object)
    labels = label_packets(np.arange(1, 4), times, sources, destinations, frame_ranges + host_ranges)
    assert labels.tolist() == [0, 1, 1]


@pytest.mark.parametrize(
    "row,message",
    [
        (",1,2,anomaly,\n", "h.csv, line 2: host is empty"),
        ("10.0.0.1,yesterday,2,anomaly,\n", "h.csv, line 2: invalid start_time 'yesterday'"),
        ("10.0.0.1,1,nan,anomaly,\n", "h.csv, line 2: invalid end_time 'nan'"),
        ("10.0.0.1,5,2,anomaly,\n", "h.csv, line 2: end_time '2' is before start_time '5'"),
        ("10.0.0.1,1,2,maybe,\n", "h.csv, line 2: invalid label 'maybe'"),
    ],
)
def test_malformed_host_rows_name_file_and_line(row, message):
    with pytest.raises(LabelsError, match=message):
        parse_labels(HOST_HEADER + row, source="h.csv")


def test_host_header_missing_time_column_is_named():
    with pytest.raises(LabelsError, match="h.csv: missing column\\(s\\) end_time"):
        parse_labels("host,start_time,label\n10.0.0.1,1,anomaly\n", source="h.csv")


def test_host_labels_file_labels_decoded_frames(shared_cases, tmp_path):
    from objectstore import open_store
    from spark_jobs.captures import capture_ref_for_key
    import pyarrow.parquet as pq

    from spark_jobs.extract_packets import decode_capture

    store = open_store(f"file://{tmp_path}")
    store.put_file("captures/two.pcapng", str(shared_cases / "two-link-types.pcapng"))
    store.put_bytes("captures/two.labels.csv", (HOST_HEADER + "198.51.100.40,0,4102444800,anomaly,dns\n").encode())
    status = decode_capture(store, capture_ref_for_key(store, "captures/two.pcapng"), output_prefix="lake/", run_id="r1")
    assert status.decoded
    assert status.labelled
    frame = pq.read_table(tmp_path / status.parts[0]).to_pandas()
    assert frame.sort_values("frame_number")["label"].tolist() == [0, 1, 0]
