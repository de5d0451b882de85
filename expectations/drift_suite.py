"""The "drift" suite: has a feature's distribution moved away from its training baseline?

The baseline of each numeric feature (``spark_jobs.feature_baseline``) is saved
in the preprocessing state of every model. New data is counted into the same
bins, and ``drift_summary_frame`` reduces each feature to one row with two
distances between the baseline shares and the new shares:

* ``psi``: the population stability index;
* ``ks_distance``: the largest gap between the two cumulative distributions at
  the bin edges (a binned Kolmogorov-Smirnov statistic).

The suite expects each to stay at or below its bound, with the feature name as
the row id, so a failure names the columns that moved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from expectations.validation import ValidationOutcome, validate_dataframe
from spark_jobs.feature_baseline import bin_counts, binned_ks_distance, population_stability_index

DRIFT_SUITE_NAME = "drift"
DRIFT_SUMMARY_COLUMNS: list[str] = ["feature", "psi", "ks_distance", "rows", "baseline_rows"]

# Bounds by a common rule of thumb: PSI above 0.25 is a large shift.
DEFAULT_PSI_MAX = 0.25
DEFAULT_KS_MAX = 0.2


def drift_summary_frame(counts: Mapping[str, Sequence[int]], baseline: Mapping[str, dict]) -> pd.DataFrame:
    """Compare new bin counts with the baseline, one row per feature that has both.

    Args:
        counts: per feature, the new rows counted per baseline bin
            (``spark_jobs.feature_baseline.bin_counts``).
        baseline: per feature, the baseline document.

    Returns:
        Columns ``feature`` (str), ``psi`` and ``ks_distance`` (float64), ``rows``
        and ``baseline_rows`` (int64), sorted by feature. A feature with no new
        rows gets NaN distances.

    Raises:
        ValueError: when a feature's counts do not have one entry per baseline bin.
    """
    records = []
    for name in sorted(set(counts) & set(baseline)):
        expected = np.asarray(baseline[name]["proportions"], dtype=np.float64)
        observed = np.asarray(counts[name], dtype=np.float64)
        if observed.shape != expected.shape:
            raise ValueError(
                f"feature {name!r}: {observed.size} bin counts for a baseline of {expected.size} bins; "
                "count with the same baseline"
            )
        total = observed.sum()
        if total:
            shares = observed / total
            psi, ks = population_stability_index(expected, shares), binned_ks_distance(expected, shares)
        else:
            psi = ks = math.nan
        records.append((name, psi, ks, int(total), int(baseline[name].get("rows", 0))))
    return pd.DataFrame.from_records(records, columns=DRIFT_SUMMARY_COLUMNS).astype(
        {"feature": "object", "psi": "float64", "ks_distance": "float64", "rows": "int64", "baseline_rows": "int64"}
    )


def drift_summary_from_rows(rows: pd.DataFrame, baseline: Mapping[str, dict]) -> pd.DataFrame:
    """Build the drift summary of raw feature rows held in pandas (see ``drift_summary_frame``)."""
    counts = {name: bin_counts(rows[name].to_numpy(np.float64), document) for name, document in baseline.items() if name in rows}
    return drift_summary_frame(counts, baseline)


def drift_suite(*, psi_max: float = DEFAULT_PSI_MAX, ks_max: float = DEFAULT_KS_MAX) -> gx.ExpectationSuite:
    """Build the suite for a drift summary frame.

    Args:
        psi_max: largest population stability index that counts as no drift.
        ks_max: largest binned Kolmogorov-Smirnov distance that counts as no drift; at most 1.

    Raises:
        ValueError: when a bound is not a positive finite number, or ``ks_max`` exceeds 1.
    """
    for name, value in (("psi_max", psi_max), ("ks_max", ks_max)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number; received {value!r}.")
    if ks_max > 1:
        raise ValueError(f"ks_max must be at most 1, the largest possible distance; received {ks_max!r}.")

    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="psi"),
        gxe.ExpectColumnValuesToBeBetween(column="psi", min_value=0.0, max_value=float(psi_max)),
        gxe.ExpectColumnValuesToBeBetween(column="ks_distance", min_value=0.0, max_value=float(ks_max)),
    ]
    return gx.ExpectationSuite(name=DRIFT_SUITE_NAME, expectations=expectations, meta={"row_id_columns": ["feature"]})


@dataclass
class DriftReport:
    """The drift check of one data set against one baseline.

    Attributes:
        outcome: the suite's result on ``summary``.
        summary: the frame from ``drift_summary_frame``.
        moved: features whose PSI or KS distance exceeds its bound, sorted.
        psi_max: the PSI bound applied.
        ks_max: the KS bound applied.
    """

    outcome: ValidationOutcome
    summary: pd.DataFrame
    moved: list[str] = field(default_factory=list)
    psi_max: float = DEFAULT_PSI_MAX
    ks_max: float = DEFAULT_KS_MAX


def check_drift(summary: pd.DataFrame, *, psi_max: float = DEFAULT_PSI_MAX, ks_max: float = DEFAULT_KS_MAX) -> DriftReport:
    """Run the drift suite on a summary frame and name the features that moved.

    A feature without new rows (NaN distances) fails the not-null expectation
    but is not listed in ``moved``.
    """
    outcome = validate_dataframe(summary, drift_suite(psi_max=psi_max, ks_max=ks_max))
    over = (summary["psi"] > psi_max) | (summary["ks_distance"] > ks_max)
    moved = sorted(summary.loc[over, "feature"].tolist())
    return DriftReport(outcome=outcome, summary=summary, moved=moved, psi_max=psi_max, ks_max=ks_max)
