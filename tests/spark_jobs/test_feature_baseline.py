"""The drift baseline: bins of equal training share, and distances between distributions."""

from __future__ import annotations

import numpy as np
import pytest

from spark_jobs.feature_baseline import (
    BASELINE_BINS,
    bin_counts,
    bin_shares,
    binned_ks_distance,
    build_baseline,
    fine_counts,
    population_stability_index,
    signed_log,
)


def _baseline(values: np.ndarray) -> dict:
    u_min, u_max = float(signed_log(values.min())), float(signed_log(values.max()))
    return build_baseline(fine_counts(values, u_min, u_max), u_min, u_max)


def test_training_data_fills_its_own_bins_exactly():
    values = np.random.default_rng(1).lognormal(6.0, 1.0, size=5000)
    baseline = _baseline(values)
    shares = bin_shares(values, baseline)
    np.testing.assert_allclose(shares, baseline["proportions"], rtol=0, atol=1e-12)
    assert population_stability_index(baseline["proportions"], shares) == pytest.approx(0.0, abs=1e-12)
    assert len(baseline["proportions"]) == BASELINE_BINS + 2


def test_merged_bins_hold_about_equal_training_shares():
    values = np.random.default_rng(2).normal(500.0, 50.0, size=20_000)
    shares = np.asarray(_baseline(values)["proportions"][1:-1])
    assert shares.min() == pytest.approx(0.1, abs=0.03)
    assert shares.max() == pytest.approx(0.1, abs=0.03)


def test_values_outside_training_range_land_in_outer_bins():
    baseline = _baseline(np.linspace(10.0, 20.0, 100))
    counts = bin_counts(np.array([-5.0, 9.0, 15.0, 21.0, 1e9]), baseline)
    assert counts[0] == 2
    assert counts[-1] == 2
    assert counts.sum() == 5


def test_constant_feature_detects_shift_both_ways():
    baseline = _baseline(np.full(100, 64.0))
    assert baseline["proportions"] == [0.0, 1.0, 0.0]
    assert bin_counts(np.array([63.0, 64.0, 65.0]), baseline).tolist() == [1, 1, 1]


def test_shifted_distribution_has_large_psi_and_ks():
    rng = np.random.default_rng(3)
    baseline = _baseline(rng.normal(500.0, 50.0, size=10_000))
    same = bin_shares(rng.normal(500.0, 50.0, size=10_000), baseline)
    shifted = bin_shares(rng.normal(650.0, 50.0, size=10_000), baseline)
    assert population_stability_index(baseline["proportions"], same) < 0.02
    assert population_stability_index(baseline["proportions"], shifted) > 1.0
    assert binned_ks_distance(baseline["proportions"], same) < 0.03
    assert binned_ks_distance(baseline["proportions"], shifted) > 0.8


def test_quantiles_are_close_to_exact_ones():
    values = np.random.default_rng(4).uniform(100.0, 1000.0, size=50_000)
    quantiles = _baseline(values)["quantiles"]
    assert quantiles["p50"] == pytest.approx(np.quantile(values, 0.5), rel=0.02)
    assert quantiles["p95"] == pytest.approx(np.quantile(values, 0.95), rel=0.02)
