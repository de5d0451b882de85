"""Train one autoencoder on normal windows, with early stopping on normal validation windows."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras

from models.autoencoders import builder_for
from models.datasets import WindowReader, normal_windows_of

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings of one model (sizes, epochs, seed)."""

    epochs: int = 20
    batch_size: int = 64
    patience: int = 3
    learning_rate: float = 1e-3
    lstm_units: int = 32
    conv_filters: int = 32
    conv_kernel_size: int = 5
    seed: int = 42
    shuffle_buffer: int = 2048


class _EpochLogger(keras.callbacks.Callback):
    """Logs one line per epoch, so long training shows progress in Prefect and on the console."""

    def __init__(self, kind: str, epochs: int, log: logging.Logger | logging.LoggerAdapter) -> None:
        super().__init__()
        self._kind, self._epochs, self._log = kind, epochs, log

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        values = ", ".join(f"{name}={value:.6f}" for name, value in sorted((logs or {}).items()))
        self._log.info("%s epoch %d/%d: %s", self._kind, epoch + 1, self._epochs, values)


def build_model(kind: str, steps: int, features: int, config: TrainingConfig) -> keras.Model:
    """Build an untrained autoencoder of ``kind`` with the sizes in ``config``."""
    builder = builder_for(kind)
    if kind == "lstm":
        return builder(steps, features, units=config.lstm_units, learning_rate=config.learning_rate)
    return builder(steps, features, filters=config.conv_filters, kernel_size=config.conv_kernel_size, learning_rate=config.learning_rate)


def train_autoencoder(
    kind: str,
    reader: WindowReader,
    config: TrainingConfig,
    *,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train an autoencoder of ``kind`` on the normal windows of the ``train`` split.

    Early stopping watches the loss on normal ``validation`` windows and restores
    the best weights; without validation windows it watches the training loss.
    Seeds Python, NumPy and TensorFlow with ``config.seed`` first.

    Returns:
        The trained model and its history (metric name -> value per epoch).

    Raises:
        ValueError: when there is no normal training window.
    """
    log = log or logger
    keras.utils.set_random_seed(config.seed)
    train_windows = reader.count(normal_windows_of("train"))
    if train_windows == 0:
        raise ValueError("no normal training windows: the captures are shorter than one window or all labelled anomalous")
    validation_windows = reader.count(normal_windows_of("validation"))
    log.info("Training %s on %d windows, validating on %d", kind, train_windows, validation_windows)

    model = build_model(kind, reader.steps, reader.features, config)
    train_data = reader.dataset(normal_windows_of("train"), batch_size=config.batch_size, shuffle_buffer=config.shuffle_buffer, seed=config.seed)
    validation_data = None
    monitor = "loss"
    if validation_windows:
        validation_data = reader.dataset(normal_windows_of("validation"), batch_size=config.batch_size)
        monitor = "val_loss"
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience, restore_best_weights=True),
        _EpochLogger(kind, config.epochs, log),
    ]
    history = model.fit(train_data, validation_data=validation_data, epochs=config.epochs, callbacks=callbacks, shuffle=False, verbose=0)
    return model, {name: [float(value) for value in values] for name, values in history.history.items()}
