"""Training windows whose starts cover every phase teach a model every phase of a periodic exchange.

Windows every 4 frames of a strictly alternating exchange all start with the same
direction. Training windows at every frame, or every 3 frames (a stride with no
common factor with 4), start with either direction.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from models.scoring import reconstruction_errors
from models.training import TrainingConfig, build_model
from spark_jobs.features import derive_rows, feature_set, fit_preprocessing
from spark_jobs.windows import cut_segment

LENGTH, STRIDE = 16, 4


def _exchange(frames: int, split: str, *, reply_first: bool) -> pd.DataFrame:
    """Return packet rows of one request/reply conversation that alternates strictly."""
    reply = (np.arange(frames) + int(reply_first)) % 2 == 1
    return pd.DataFrame(
        {
            "capture_id": "c1",
            "split": split,
            "frame_number": np.arange(1, frames + 1),
            "timestamp_ns": np.arange(frames) * 1_000_000,
            "inter_arrival_ns": np.where(reply, 50_000, 1_950_000),
            "frame_len": np.where(reply, 400, 70),
            "payload_len": np.where(reply, 346, 16),
            "src_port": np.where(reply, 21.0, 40_000.0),
            "dst_port": np.where(reply, 40_000.0, 21.0),
            "tcp_flags": 24.0,
            "ttl": np.where(reply, 64.0, 128.0),
            "protocol": "FTP",
            "src_addr": np.where(reply, "10.0.0.2", "10.0.0.1"),
            "dst_addr": np.where(reply, "10.0.0.1", "10.0.0.2"),
            "ip_proto": 6,
            "label": 0,
        }
    )


def _state(rows: pd.DataFrame, training_stride: int | None):
    chosen = feature_set("paper")
    numeric = rows[list(chosen.numeric_features)]
    counts = {column: rows[column].astype(str).value_counts().to_dict() for column in chosen.categorical_features}
    return fit_preprocessing(
        numeric.min().to_dict(), numeric.max().to_dict(), counts, window_length=LENGTH, window_stride=STRIDE,
        training_window_stride=training_stride,
    )


def _windows(segment: pd.DataFrame, state) -> np.ndarray:
    values = np.stack(cut_segment(segment, state)["values"].to_numpy())
    return values.reshape(len(values), LENGTH, -1)


def _phase_scores(training_stride: int | None) -> tuple[float, float]:
    """Train a Conv1D on training windows and return two median scores of held-out windows.

    The first median is over windows that start with a request, the second over
    windows that start with a reply.
    """
    training = _exchange(600, "train", reply_first=False)
    state = _state(derive_rows(training, "paper"), training_stride)
    train = _windows(training, state)
    config = TrainingConfig(epochs=30, batch_size=32, seed=5)
    keras.utils.set_random_seed(config.seed)
    model = build_model("conv1d", LENGTH, train.shape[2], config)
    model.fit(train, train, epochs=config.epochs, batch_size=config.batch_size, verbose=0)
    request_first = reconstruction_errors(model, [_windows(_exchange(100, "test", reply_first=False), state)])
    reply_first = reconstruction_errors(model, [_windows(_exchange(100, "test", reply_first=True), state)])
    return float(np.median(request_first)), float(np.median(reply_first))


def test_stride_four_training_sees_one_phase():
    request_first, reply_first = _phase_scores(None)
    assert reply_first > 10 * request_first


@pytest.mark.parametrize("training_stride", [1, 3])
def test_coprime_training_stride_sees_both_phases(training_stride):
    request_first, reply_first = _phase_scores(training_stride)

    # Training on one phase (stride 4 or 2) leaves reply-first windows at 0.46 to 0.48, far above 1e-3.
    assert reply_first < 3 * request_first + 1e-3
