"""Frame and host scores derived from window scores, checked against a brute-force cover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.derived_scores import covering_max, host_scores


def brute_force_cover(scores: np.ndarray, rows: int, length: int, stride: int) -> np.ndarray:
    result = np.full(rows, np.nan)
    for index, score in enumerate(scores):
        for row in range(index * stride, index * stride + length):
            result[row] = score if np.isnan(result[row]) else max(result[row], score)
    return result


@pytest.mark.parametrize(("length", "stride"), [(32, 4), (16, 8), (5, 7), (3, 1), (4, 4)])
@pytest.mark.parametrize("windows", [1, 2, 9])
def test_covering_max_matches_brute_force(length, stride, windows):
    scores = np.random.default_rng(length * 100 + stride).random(windows)
    rows = (windows - 1) * stride + length + 2

    result = covering_max(scores, rows, length=length, stride=stride)

    np.testing.assert_array_equal(result, brute_force_cover(scores, rows, length, stride))


def test_rows_past_last_window_have_no_score():
    result = covering_max(np.array([0.5, 0.25]), 12, length=4, stride=4)

    assert result[:8].tolist() == [0.5] * 4 + [0.25] * 4
    assert np.isnan(result[8:]).all()


def test_segment_without_windows_has_no_score():
    assert np.isnan(covering_max(np.zeros(0), 3, length=4, stride=2)).all()


def test_frame_flags_match_window_flags():
    rng = np.random.default_rng(5)
    scores = rng.random(40)
    threshold = 0.8
    length, stride = 8, 3
    rows = 39 * stride + length

    frame_flagged = covering_max(scores, rows, length=length, stride=stride) > threshold

    in_flagged_window = np.zeros(rows, dtype=bool)
    for index in np.flatnonzero(scores > threshold):
        in_flagged_window[index * stride:index * stride + length] = True
    np.testing.assert_array_equal(frame_flagged, in_flagged_window)


@pytest.mark.parametrize(("rows", "length", "stride"), [(5, 4, 2), (10, 0, 2), (10, 4, 0)])
def test_covering_max_rejects_bad_shape(rows, length, stride):
    with pytest.raises(ValueError, match="rows|at least 1"):
        covering_max(np.ones(2), rows, length=length, stride=stride)


def test_host_takes_highest_frame_it_sent_or_received():
    frames = pd.DataFrame({"frame_number": [1, 2, 3, 4], "score": [0.1, 0.7, 0.3, 0.7]})
    addresses = pd.DataFrame({
        "frame_number": [1, 2, 3, 4, 5],
        "src_addr": ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.9"],
        "dst_addr": ["10.0.0.2", "10.0.0.1", "10.0.0.1", None, "10.0.0.1"],
    })

    table = host_scores(frames, addresses, threshold=0.5)

    assert table["address"].tolist() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert table["score"].tolist() == [0.7, 0.7, 0.7]
    by_address = table.set_index("address")
    assert by_address.loc["10.0.0.1", "score"] == 0.7
    assert by_address.loc["10.0.0.1", "top_frame"] == 2
    # Frame 3 goes from 10.0.0.1 to itself and counts once; frame 5 has no score.
    assert by_address.loc["10.0.0.1", "frames"] == 3
    assert by_address.loc["10.0.0.3", "score"] == 0.7
    assert by_address.loc["10.0.0.3", "top_frame"] == 4
    assert by_address["flagged_frames"].tolist() == [1, 1, 1]
    assert by_address["flagged"].all()
    assert "10.0.0.9" not in by_address.index


def test_tied_hosts_ordered_by_flagged_frames():
    frames = pd.DataFrame({"frame_number": [1, 2, 3, 4], "score": [0.9, 0.9, 0.6, 0.2]})
    addresses = pd.DataFrame({"frame_number": [1, 2, 3, 4], "src_addr": ["a", "z", "z", "z"], "dst_addr": [None] * 4})

    table = host_scores(frames, addresses, threshold=0.5)

    assert table["address"].tolist() == ["z", "a"]
    assert table["flagged_frames"].tolist() == [2, 1]
    assert table["frames"].tolist() == [3, 1]


def test_host_below_threshold_not_flagged():
    frames = pd.DataFrame({"frame_number": [1, 2], "score": [0.9, 0.2]})
    addresses = pd.DataFrame({"frame_number": [1, 2], "src_addr": ["a", "b"], "dst_addr": [None, None]})

    table = host_scores(frames, addresses, threshold=0.5).set_index("address")

    assert table.loc["b", "flagged"] == False  # noqa: E712
    assert table.loc["b", "flagged_frames"] == 0
    assert table.loc["a", "flagged"] == True  # noqa: E712


def test_hosts_ordered_by_score_then_address():
    frames = pd.DataFrame({"frame_number": [1, 2], "score": [0.2, 0.9]})
    addresses = pd.DataFrame({"frame_number": [1, 2], "src_addr": ["b", "c"], "dst_addr": ["a", "d"]})

    table = host_scores(frames, addresses, threshold=0.5)

    assert table["address"].tolist() == ["c", "d", "a", "b"]
    assert table["score"].tolist() == [0.9, 0.9, 0.2, 0.2]


def test_no_scored_frame_gives_empty_host_table():
    frames = pd.DataFrame({"frame_number": pd.Series([], dtype="int64"), "score": pd.Series([], dtype="float64")})
    addresses = pd.DataFrame({"frame_number": [1], "src_addr": ["10.0.0.1"], "dst_addr": ["10.0.0.2"]})

    table = host_scores(frames, addresses, threshold=0.5)

    assert table.empty
    assert list(table.columns) == ["address", "score", "frames", "flagged_frames", "top_frame", "flagged"]
