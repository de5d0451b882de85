"""pandas tables in the object store, as Parquet: one writer and one reader for every flow task."""

from __future__ import annotations

import io

import pandas as pd

from objectstore import ObjectStore


def put_frame(store: ObjectStore, key: str, frame: pd.DataFrame) -> None:
    """Store ``frame`` at ``key`` as Parquet, without its index."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(key, buffer.getvalue())


def get_frame(store: ObjectStore, key: str) -> pd.DataFrame:
    """Read a table stored with ``put_frame``."""
    return pd.read_parquet(io.BytesIO(store.get_bytes(key)))
