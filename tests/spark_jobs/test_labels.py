"""Labels files: parsing, errors, and frame labelling."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.captures import capture_id_for_key, labels_key_for
from spark_jobs.labels import LabelsError, label_frames, parse_labels


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
