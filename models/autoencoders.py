"""The two autoencoders: LSTM (recurrent) and Conv1D (convolutional).

Both map a window [steps, features] to a reconstruction of the same shape and use
only built-in Keras layers, so saved models load in Keras safe mode without any
custom code.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers

MODEL_KINDS = ("lstm", "conv1d")


def build_lstm_autoencoder(steps: int, features: int, *, units: int = 32, learning_rate: float = 1e-3) -> keras.Model:
    """Build an LSTM sequence autoencoder.

    The encoder LSTM reads the window and keeps its last state (``units`` values):
    the bottleneck. ``RepeatVector`` feeds that state to every step of a decoder
    LSTM, and a per-step dense layer with a sigmoid maps it back to the
    [0, 1]-scaled features.

    Args:
        steps: frames per window.
        features: features per frame.
        units: units of each LSTM layer.
        learning_rate: Adam learning rate.
    """
    inputs = keras.Input(shape=(steps, features), name="window")
    encoded = layers.LSTM(units, name="encoder")(inputs)
    repeated = layers.RepeatVector(steps, name="repeat")(encoded)
    decoded = layers.LSTM(units, return_sequences=True, name="decoder")(repeated)
    outputs = layers.TimeDistributed(layers.Dense(features, activation="sigmoid"), name="reconstruction")(decoded)
    model = keras.Model(inputs, outputs, name="lstm_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def build_conv1d_autoencoder(
    steps: int, features: int, *, filters: int = 32, kernel_size: int = 5, learning_rate: float = 1e-3
) -> keras.Model:
    """Build a Conv1D autoencoder that halves the time axis twice.

    The window is zero-padded to a multiple of 4 steps, encoded by two strided
    convolutions (``filters`` then ``filters // 2`` channels at a quarter of the
    steps: the bottleneck), decoded by two transposed convolutions, and cropped
    back to ``steps``. A final convolution with a sigmoid gives the [0, 1]-scaled
    features.

    Args:
        steps: frames per window.
        features: features per frame.
        filters: channels of the first convolution.
        kernel_size: kernel length in frames.
        learning_rate: Adam learning rate.
    """
    padding = (-steps) % 4
    inputs = keras.Input(shape=(steps, features), name="window")
    hidden = layers.ZeroPadding1D((0, padding), name="pad")(inputs) if padding else inputs
    hidden = layers.Conv1D(filters, kernel_size, strides=2, padding="same", activation="relu", name="encoder_1")(hidden)
    hidden = layers.Conv1D(max(filters // 2, 1), kernel_size, strides=2, padding="same", activation="relu", name="encoder_2")(hidden)
    hidden = layers.Conv1DTranspose(max(filters // 2, 1), kernel_size, strides=2, padding="same", activation="relu", name="decoder_1")(hidden)
    hidden = layers.Conv1DTranspose(filters, kernel_size, strides=2, padding="same", activation="relu", name="decoder_2")(hidden)
    if padding:
        hidden = layers.Cropping1D((0, padding), name="crop")(hidden)
    outputs = layers.Conv1D(features, kernel_size, padding="same", activation="sigmoid", name="reconstruction")(hidden)
    model = keras.Model(inputs, outputs, name="conv1d_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def builder_for(kind: str) -> Callable[..., keras.Model]:
    """Return the build function of a model kind.

    Raises:
        ValueError: for a kind other than ``lstm`` or ``conv1d``.
    """
    builders = {"lstm": build_lstm_autoencoder, "conv1d": build_conv1d_autoencoder}
    if kind not in builders:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return builders[kind]
