"""Window counts and frame coverage against a brute-force enumeration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spark_jobs.features import fit_preprocessing
from spark_jobs.windows import cut_segment, window_count, window_starts


def brute_force_windows(frames: int, length: int, stride: int) -> list[tuple[int, int]]:
    windows, start = [], 0
    while start + length <= frames:
        windows.append((start, start + length - 1))
        start += stride
    return windows


CASES = [(frames, length, stride) for frames in (0, 1, 2, 31, 32, 33, 99, 100, 257) for length in (1, 4, 32, 50) for stride in (1, 2, 7, 32) if stride <= length]


@pytest.mark.parametrize("frames,length,stride", CASES + [(99, 50, 2)])
def test_window_count_matches_brute_force(frames, length, stride):
    expected = brute_force_windows(frames, length, stride)
    assert window_count(frames, length, stride) == len(expected)
    assert [(int(s), int(s) + length - 1) for s in window_starts(frames, length, stride)] == expected


def test_ninety_nine_frames_window_fifty_stride_two():
    assert window_count(99, 50, 2) == 25


@pytest.mark.parametrize("length,stride", [(0, 1), (4, 0)])
def test_invalid_length_or_stride_is_rejected(length, stride):
    with pytest.raises(ValueError, match="must be at least 1"):
        window_count(10, length, stride)


def _segment(frames: int, *, labels=None, split: str = "test") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "capture_id": "c1",
            "split": split,
            "frame_number": np.arange(1, frames + 1),
            "timestamp_ns": np.arange(frames) * 1_000,
            "inter_arrival_ns": np.full(frames, 1_000),
            "frame_len": np.full(frames, 100),
            "payload_len": np.full(frames, 40),
            "src_port": np.full(frames, 1234.0),
            "dst_port": np.full(frames, 80.0),
            "tcp_flags": np.full(frames, 2.0),
            "ttl": np.full(frames, 64.0),
            "protocol": "TCP",
            "src_addr": "10.0.0.1",
            "dst_addr": "10.0.0.2",
            "ip_proto": 6,
            "label": labels,
        }
    )


def _state(length: int, stride: int, training_stride: int | None = None):
    return fit_preprocessing({}, {}, {}, window_length=length, window_stride=stride, training_window_stride=training_stride)


def test_cut_segment_records_first_and_last_frame():
    windows = cut_segment(_segment(99), _state(50, 2))
    assert len(windows) == 25
    assert windows["first_frame"].tolist() == list(range(1, 50, 2))
    assert windows["last_frame"].tolist() == list(range(50, 99, 2))
    assert windows["end_ns"].iloc[0] == 49_000


def test_window_label_is_anomalous_when_any_frame_is():
    labels = np.zeros(12, dtype=np.int8)
    labels[9] = 1
    windows = cut_segment(_segment(12, labels=labels), _state(4, 4))
    assert windows["label"].tolist() == [0, 0, 1]
    assert windows["anomalous_frames"].tolist() == [0, 0, 1]


def test_segment_shorter_than_window_gives_no_rows():
    assert len(cut_segment(_segment(3), _state(4, 1))) == 0


@pytest.mark.parametrize("split,expected_starts", [("train", list(range(1, 70))), ("validation", list(range(1, 70, 4))), ("test", list(range(1, 70, 4)))])
def test_training_windows_use_own_stride(split, expected_starts):
    windows = cut_segment(_segment(100, split=split), _state(32, 4, training_stride=1))
    assert windows["first_frame"].tolist() == expected_starts
    assert windows["last_frame"].tolist() == [start + 31 for start in expected_starts]


def test_unset_training_stride_uses_window_stride():
    state = _state(32, 4)
    assert state.stride_of("train") == 4
    assert cut_segment(_segment(100, split="train"), state)["first_frame"].tolist() == list(range(1, 70, 4))


@pytest.mark.parametrize("training_stride", [0, 5])
def test_out_of_range_training_stride_is_rejected(training_stride):
    with pytest.raises(ValueError, match=r"invalid training window stride (0|5): it must be between 1 and the window stride \(4\)"):
        _state(32, 4, training_stride=training_stride)
