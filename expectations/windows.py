"""The "windows" suite: checks on the float tensor that the autoencoders train on.

A window set is a tensor of shape ``[windows, steps, features]``, not a table.
``window_summary_frame`` reduces it to one row per window, and the suite checks
that frame. Every window must have the expected shape, only finite values, and
values inside the scaler's output range.
"""

from __future__ import annotations

import math

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

WINDOW_SUITE_NAME = "windows"

WINDOW_SUMMARY_COLUMNS: list[str] = [
    "window_index",
    "steps",
    "features",
    "min_value",
    "max_value",
    "non_finite",
]

# Windows summarised at a time by window_summary_frame. The temporary arrays
# hold about this many windows' worth of float64 values.
_SUMMARY_CHUNK_WINDOWS = 4096


def window_summary_frame(windows: np.ndarray) -> pd.DataFrame:
    """Summarise each window of a window tensor in one row.

    Args:
        windows: Real-valued array of shape ``[windows, steps, features]``,
            normally float32 after encoding and scaling.

    Returns:
        One row per window, in tensor order, with these columns:

        * ``window_index`` (int64): position in the tensor.
        * ``steps`` and ``features`` (int64): the tensor's second and third dimensions.
        * ``min_value`` and ``max_value`` (float64): over the window's finite
          values, NaN when it has none.
        * ``non_finite`` (int64): count of NaN and infinite values.

        A tensor with no windows gives an empty frame with these columns.

    Raises:
        ValueError: If ``windows`` is not three-dimensional.
        TypeError: If ``windows`` does not hold integers or floats.
    """
    tensor = np.asarray(windows)

    if tensor.ndim != 3:
        raise ValueError(
            "windows must be a 3-dimensional array [windows, steps, features]; "
            f"received shape {tensor.shape}."
        )
    if not (np.issubdtype(tensor.dtype, np.floating) or np.issubdtype(tensor.dtype, np.integer)):
        raise TypeError(
            f"windows must hold integers or floats; received dtype {tensor.dtype}. "
            "Encode categorical columns before windowing."
        )

    window_count, steps, features = tensor.shape
    min_values = np.full(window_count, np.nan, dtype=np.float64)
    max_values = np.full(window_count, np.nan, dtype=np.float64)
    non_finite = np.zeros(window_count, dtype=np.int64)

    if steps * features > 0:
        for start in range(0, window_count, _SUMMARY_CHUNK_WINDOWS):
            stop = min(start + _SUMMARY_CHUNK_WINDOWS, window_count)
            _summarise_chunk(tensor[start:stop], min_values[start:stop], max_values[start:stop], non_finite[start:stop])

    return pd.DataFrame(
        {
            "window_index": np.arange(window_count, dtype=np.int64),
            "steps": np.full(window_count, steps, dtype=np.int64),
            "features": np.full(window_count, features, dtype=np.int64),
            "min_value": min_values,
            "max_value": max_values,
            "non_finite": non_finite,
        },
        columns=WINDOW_SUMMARY_COLUMNS,
    )


def _summarise_chunk(
    chunk: np.ndarray, min_out: np.ndarray, max_out: np.ndarray, non_finite_out: np.ndarray
) -> None:
    """Write the finite minimum, finite maximum and non-finite count of each window in ``chunk``."""
    values = chunk.astype(np.float64, copy=False).reshape(chunk.shape[0], -1)
    finite = np.isfinite(values)

    non_finite_out[:] = values.shape[1] - finite.sum(axis=1)

    has_finite = finite.any(axis=1)
    window_min = np.where(finite, values, np.inf).min(axis=1)
    window_max = np.where(finite, values, -np.inf).max(axis=1)
    min_out[:] = np.where(has_finite, window_min, np.nan)
    max_out[:] = np.where(has_finite, window_max, np.nan)


def window_suite(
    *, steps: int, features: int, lower: float = 0.0, upper: float = 1.0
) -> gx.ExpectationSuite:
    """Build the suite for the summary frame of a window tensor.

    The suite expects at least one window, every window of shape
    ``[steps, features]``, no NaN or infinite value, and every finite value
    within ``[lower, upper]`` (both bounds inclusive). Run it on
    ``window_summary_frame(windows)``.

    Args:
        steps: Frames per window; at least 1.
        features: Feature columns per frame; at least 1.
        lower: Smallest value the scaler may output.
        upper: Largest value the scaler may output; at least ``lower``.

    Returns:
        A new suite named ``"windows"``, bound to no Great Expectations context.

    Raises:
        ValueError: If a dimension is below 1, a bound is not finite, or
            ``lower > upper``.
    """
    for name, value in (("steps", steps), ("features", features)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer of at least 1; received {value!r}.")
    for name, value in (("lower", lower), ("upper", upper)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; received {value!r}.")
    if lower > upper:
        raise ValueError(f"lower must not exceed upper; received lower={lower!r}, upper={upper!r}.")

    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="steps", min_value=int(steps), max_value=int(steps)),
        gxe.ExpectColumnValuesToBeBetween(
            column="features", min_value=int(features), max_value=int(features)
        ),
        gxe.ExpectColumnValuesToBeBetween(column="non_finite", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="min_value", min_value=float(lower)),
        gxe.ExpectColumnValuesToBeBetween(column="max_value", max_value=float(upper)),
    ]

    return gx.ExpectationSuite(
        name=WINDOW_SUITE_NAME,
        expectations=expectations,
        meta={"row_id_columns": ["window_index"]},
    )
