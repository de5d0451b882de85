"""Stream windows from their Parquet parts into NumPy batches and ``tf.data``.

Parts are read one record batch at a time, so training data larger than memory
works: at most one Parquet row group and one batch are held at once.
"""

from __future__ import annotations

import io
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from objectstore import ObjectStore

# A selector receives a record batch's metadata columns and returns a boolean mask.
Selector = Callable[[pa.RecordBatch], np.ndarray]

METADATA_COLUMNS = ["capture_id", "split", "window_index", "first_frame", "last_frame", "start_ns", "end_ns", "label", "anomalous_frames"]


def normal_windows_of(split: str) -> Selector:
    """Select windows of ``split`` that are not labelled anomalous (unlabelled counts as normal)."""

    def select(batch: pa.RecordBatch) -> np.ndarray:
        in_split = pc.equal(batch.column("split"), split)
        not_anomalous = pc.fill_null(pc.not_equal(batch.column("label"), 1), True)
        return pc.and_(in_split, not_anomalous).to_numpy(zero_copy_only=False)

    return select


def evaluation_windows(batch: pa.RecordBatch) -> np.ndarray:
    """Select the windows used for evaluation: the test split, and anomalous windows of any split.

    Anomalous windows never take part in fitting or calibration, so scoring them
    leaks nothing.
    """
    in_test = pc.equal(batch.column("split"), "test")
    anomalous = pc.fill_null(pc.equal(batch.column("label"), 1), False)
    return pc.or_(in_test, anomalous).to_numpy(zero_copy_only=False)


class WindowReader:
    """Reads the window set written by the Spark windows job.

    Args:
        store: object store holding the parts.
        parts: keys of the Parquet parts.
        steps: frames per window.
        features: features per frame.
        batch_rows: rows per Parquet record batch read.
    """

    def __init__(self, store: ObjectStore, parts: list[str], *, steps: int, features: int, batch_rows: int = 4096) -> None:
        self._store = store
        self._parts = list(parts)
        self.steps = steps
        self.features = features
        self._batch_rows = batch_rows

    def _record_batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        for key in self._parts:
            with self._store.open_read(key) as stream:
                parquet = pq.ParquetFile(io.BytesIO(stream.read()))
            yield from parquet.iter_batches(batch_size=self._batch_rows, columns=columns)

    def metadata(self, selector: Selector | None = None) -> pd.DataFrame:
        """Return the metadata of the selected windows, in the order ``iter_windows`` yields them."""
        frames = []
        for batch in self._record_batches(METADATA_COLUMNS):
            if selector is not None:
                batch = batch.filter(pa.array(selector(batch)))
            frames.append(batch.to_pandas())
        if not frames:
            return pd.DataFrame(columns=METADATA_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    def iter_windows(self, selector: Selector | None = None) -> Iterator[np.ndarray]:
        """Yield float32 arrays [rows, steps, features] of the selected windows."""
        for batch in self._record_batches(["values", "split", "label"]):
            if selector is not None:
                batch = batch.filter(pa.array(selector(batch)))
            if batch.num_rows == 0:
                continue
            flat = batch.column("values").flatten().to_numpy(zero_copy_only=False)
            yield np.asarray(flat, dtype=np.float32).reshape(batch.num_rows, self.steps, self.features)

    def count(self, selector: Selector | None = None) -> int:
        """Return how many windows ``selector`` selects."""
        total = 0
        for batch in self._record_batches(["split", "label"]):
            total += int(np.count_nonzero(selector(batch))) if selector is not None else batch.num_rows
        return total

    def dataset(self, selector: Selector, *, batch_size: int, shuffle_buffer: int = 0, seed: int = 0):
        """Return a ``tf.data.Dataset`` of (window, window) pairs for autoencoder training."""
        import tensorflow as tf

        def rows() -> Iterator[np.ndarray]:
            for block in self.iter_windows(selector):
                yield from block

        signature = tf.TensorSpec(shape=(self.steps, self.features), dtype=tf.float32)
        dataset = tf.data.Dataset.from_generator(rows, output_signature=signature)
        # A generator has no known length; stating it lets Keras size each epoch
        # instead of warning that the input "ran out of data".
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.count(selector)))
        if shuffle_buffer:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return dataset.map(lambda window: (window, window)).batch(batch_size).prefetch(2)
