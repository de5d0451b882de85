"""Reconstruction-error scores of windows (see the score contract in ``models``)."""

from __future__ import annotations

from typing import Iterable

import keras
import numpy as np


def reconstruction_errors(model: keras.Model, blocks: Iterable[np.ndarray], *, batch_size: int = 256) -> np.ndarray:
    """Return the reconstruction MSE of every window, in input order.

    Args:
        model: a trained autoencoder.
        blocks: float32 arrays [windows, steps, features].
        batch_size: windows per forward pass.

    Returns:
        float64 array [windows]: the mean over steps and features of the squared
        difference between each window and its reconstruction.
    """
    scores = []
    for block in blocks:
        for start in range(0, len(block), batch_size):
            windows = block[start : start + batch_size]
            reconstruction = np.asarray(model(windows, training=False))
            scores.append(np.mean((windows - reconstruction) ** 2, axis=(1, 2), dtype=np.float64))
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float64)
