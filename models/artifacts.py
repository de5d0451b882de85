"""Serialise Keras models to bytes and back, loading only in safe mode."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras


def model_to_bytes(model: keras.Model) -> bytes:
    """Return the model in the native ``.keras`` format."""
    with tempfile.TemporaryDirectory(prefix="netae-model-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def model_from_bytes(data: bytes) -> keras.Model:
    """Load a ``.keras`` model in Keras safe mode, which refuses serialised Python code (lambdas)."""
    with tempfile.TemporaryDirectory(prefix="netae-model-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(data)
        return keras.saving.load_model(path, compile=False, safe_mode=True)
