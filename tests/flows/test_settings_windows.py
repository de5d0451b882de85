"""Window settings: the training stride, its default, its check against the window stride and its variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.settings import NetaeSettings


def test_training_stride_defaults_to_window_stride(monkeypatch):
    monkeypatch.delenv("NETAE_TRAINING_WINDOW_STRIDE", raising=False)
    settings = NetaeSettings(window_stride=8)
    assert settings.training_window_stride is None


def test_training_stride_above_window_stride_is_rejected():
    with pytest.raises(ValidationError, match=r"invalid training_window_stride \(9\): it must not exceed window_stride \(8\)"):
        NetaeSettings(window_stride=8, training_window_stride=9)


def test_training_stride_from_environment(monkeypatch):
    monkeypatch.setenv("NETAE_TRAINING_WINDOW_STRIDE", "4")
    assert NetaeSettings(window_stride=8).training_window_stride == 4
