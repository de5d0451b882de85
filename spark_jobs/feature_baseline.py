"""The training distribution of each numeric feature, saved so later data can be checked for drift.

Values are first mapped to ``signed_log(x) = sign(x) * log(1 + |x|)``, so
heavy-tailed features (byte counts, inter-arrival times) spread over the bins.
The training range of that value is cut into ``FINE_BINS`` equal-width fine
bins, which Spark counts in one pass; integer counts add up the same in any
order, so the baseline does not depend on how Spark partitions the rows. The
fine bins are then merged into about ``BASELINE_BINS`` bins of equal training
share (fewer when values tie). Two more bins hold values below and above the
training range, with a training share of 0.

A baseline document (JSON-able dict) has:
    ``u_min``, ``u_max``: the training range of ``signed_log(x)``;
    ``cuts``: the first fine bin of each merged bin;
    ``proportions``: training share of [below, merged bins..., above];
    ``quantiles``: approximate training quantiles of ``x`` (to one fine bin),
    keyed ``p01`` ... ``p99``, for reading only.
"""

from __future__ import annotations

import numpy as np

FINE_BINS = 256
BASELINE_BINS = 10
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

# Share given to an empty bin when computing the population stability index,
# so that log(0) never occurs.
EMPTY_BIN_SHARE = 1e-4


def signed_log(values: np.ndarray) -> np.ndarray:
    """Return ``sign(x) * log(1 + |x|)``, elementwise, as float64."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.log1p(np.abs(values))


def _signed_exp(values: np.ndarray) -> np.ndarray:
    return np.sign(values) * np.expm1(np.abs(values))


def fine_bin_index(transformed: np.ndarray, u_min: float, u_max: float) -> np.ndarray:
    """Return the fine bin of each ``signed_log`` value: -1 below the range, ``FINE_BINS`` above it."""
    span = u_max - u_min
    if span > 0.0:
        index = np.floor((transformed - u_min) / span * FINE_BINS).astype(np.int64)
        index = np.minimum(index, FINE_BINS - 1)
    else:
        index = np.zeros(len(transformed), dtype=np.int64)
    index[transformed < u_min] = -1
    index[transformed > u_max] = FINE_BINS
    return index


def fine_counts(values: np.ndarray, u_min: float, u_max: float) -> np.ndarray:
    """Count training values per fine bin; values outside [u_min, u_max] are not counted."""
    index = fine_bin_index(signed_log(values), u_min, u_max)
    inside = index[(index >= 0) & (index < FINE_BINS)]
    return np.bincount(inside, minlength=FINE_BINS).astype(np.int64)


def build_baseline(counts: np.ndarray, u_min: float, u_max: float) -> dict:
    """Merge fine-bin training counts into the baseline document of one feature."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    cumulative = np.cumsum(counts)
    cuts = [0]
    if total:
        for step in range(1, BASELINE_BINS):
            cut = int(np.searchsorted(cumulative, step * total / BASELINE_BINS, side="left")) + 1
            # A cut after the last non-empty fine bin would only add an empty bin.
            if cuts[-1] < cut < FINE_BINS and cumulative[cut - 1] < total:
                cuts.append(cut)
    merged = np.add.reduceat(counts, cuts)
    shares = merged / total if total else np.zeros(len(merged))

    width = (u_max - u_min) / FINE_BINS
    quantiles = {}
    for quantile in QUANTILES:
        fine = int(np.searchsorted(cumulative, quantile * total, side="left")) if total else 0
        upper_edge = u_min + width * (min(fine, FINE_BINS - 1) + 1)
        quantiles[f"p{round(quantile * 100):02d}"] = float(_signed_exp(np.array([upper_edge]))[0])

    return {
        "u_min": float(u_min),
        "u_max": float(u_max),
        "cuts": cuts,
        "proportions": [0.0, *(float(share) for share in shares), 0.0],
        "quantiles": quantiles,
        "rows": total,
    }


def bin_shares(values: np.ndarray, baseline: dict) -> np.ndarray:
    """Return the share of ``values`` in each baseline bin: [below, merged bins..., above]."""
    counts = bin_counts(values, baseline)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """Return the PSI, sum of (actual - expected) * ln(actual / expected), over matching bins.

    Both arguments are shares that sum to 1. Empty bins count as
    ``EMPTY_BIN_SHARE``. By a common rule of thumb a PSI below 0.1 means no
    shift, 0.1 to 0.25 a moderate one and above 0.25 a large one.
    """
    expected = np.clip(np.asarray(expected, dtype=np.float64), EMPTY_BIN_SHARE, None)
    actual = np.clip(np.asarray(actual, dtype=np.float64), EMPTY_BIN_SHARE, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def binned_ks_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Return the largest gap between the two cumulative distributions at the bin edges.

    This is the Kolmogorov-Smirnov statistic measured on the baseline bins only,
    so it can miss a shift that stays inside one bin.
    """
    gap = np.cumsum(np.asarray(actual, dtype=np.float64)) - np.cumsum(np.asarray(expected, dtype=np.float64))
    return float(np.max(np.abs(gap))) if len(gap) else 0.0


def bin_counts(values: np.ndarray, baseline: dict) -> np.ndarray:
    """Count ``values`` per baseline bin: [below, merged bins..., above], as int64."""
    values = np.asarray(values, dtype=np.float64)
    bins = len(baseline["proportions"])
    if len(values) == 0:
        return np.zeros(bins, dtype=np.int64)
    index = fine_bin_index(signed_log(values), baseline["u_min"], baseline["u_max"])
    merged = np.searchsorted(np.asarray(baseline["cuts"]), index, side="right")
    merged[index < 0] = 0
    merged[index >= FINE_BINS] = bins - 1
    return np.bincount(merged, minlength=bins).astype(np.int64)


def baseline_of(values: np.ndarray) -> dict:
    """Build the baseline document of values held in memory, as the Spark job does in two passes.

    Raises:
        ValueError: when ``values`` is empty.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("values is empty: a baseline needs at least one training value")
    u_min, u_max = float(signed_log(values.min())), float(signed_log(values.max()))
    return build_baseline(fine_counts(values, u_min, u_max), u_min, u_max)
