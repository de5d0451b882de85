"""The ``stats`` feature set: damped incremental statistics per host, host pair and socket.

This follows Kitsune's feature extractor (Mirsky et al., "Kitsune: An Ensemble
of Autoencoders for Online Network Intrusion Detection", NDSS 2018). For every
frame, in time order, and for each key it belongs to, a damped window keeps

    w  = sum over earlier frames j of the key of  2^(-lambda * (t - t_j))
    LS = the same sum weighted by x_j,   SS = weighted by x_j^2

so ``w`` is the key's recent frame count, ``LS / w`` the mean and
``sqrt(SS / w - mean^2)`` the standard deviation of ``x``, with older frames
fading with half-life ``1 / lambda`` seconds. The frame itself is included.

Keys and statistics:
    * ``host`` (source address): weight, mean and std of frame length;
    * ``pair`` (source, destination): the same, plus mean and std of the
      jitter, the time since the pair's previous frame (0 for its first frame);
    * ``socket`` (source address and port, destination address and port): weight,
      mean and std of frame length.

Each for lambda in ``DECAY_LAMBDAS`` (per second). Kitsune's two-direction
statistics (magnitude, radius, covariance) are not computed.

The recurrence ``w_i = w_(i-1) * 2^(-lambda * dt) + 1`` is evaluated in closed
form per key with ``numpy.logaddexp.accumulate`` in the log domain, one call per
key for all lambdas and sums at once, so long gaps cannot overflow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.features import FeatureSet, category_strings, numeric_column, packet_row_metadata

DECAY_LAMBDAS: tuple[float, ...] = (5.0, 3.0, 1.0, 0.1, 0.01)

_KEYS: dict[str, tuple[str, ...]] = {
    "host": ("src_addr",),
    "pair": ("src_addr", "dst_addr"),
    "socket": ("src_addr", "src_port", "dst_addr", "dst_port"),
}
_SIZE_STATISTICS = ("weight", "mean_bytes", "std_bytes")
_JITTER_STATISTICS = ("jitter_mean_s", "jitter_std_s")
_LN2 = float(np.log(2.0))


def _lambda_label(decay: float) -> str:
    return f"{decay:g}".replace(".", "p")


def stats_feature_names() -> tuple[str, ...]:
    """Return the numeric feature names, e.g. ``host_l5_weight`` or ``pair_l0p1_jitter_mean_s``."""
    names = []
    for key in _KEYS:
        statistics = _SIZE_STATISTICS + (_JITTER_STATISTICS if key == "pair" else ())
        for decay in DECAY_LAMBDAS:
            names.extend(f"{key}_l{_lambda_label(decay)}_{statistic}" for statistic in statistics)
    return tuple(names)


def damped_sums(times_s: np.ndarray, values: np.ndarray, decays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return damped weight, linear sum and squared sum after each observation of one key.

    Args:
        times_s: observation times in seconds, non-decreasing, shape [n].
        values: observed values, non-negative, shape [n].
        decays: decay rates lambda per second, shape [k].

    Returns:
        Three float64 arrays of shape [n, k]: ``w``, ``LS`` and ``SS``.
    """
    relative = (times_s - times_s[0])[:, None] * decays[None, :] * _LN2
    with np.errstate(divide="ignore"):
        log_x = np.log(values)[:, None]
    stacked = np.concatenate([relative, relative + log_x, relative + 2.0 * log_x], axis=1)
    # log of sum_j 2^(lambda * t_j) * x_j^p up to row i, then times 2^(-lambda * t_i).
    accumulated = np.logaddexp.accumulate(stacked, axis=0) - np.concatenate([relative] * 3, axis=1)
    sums = np.exp(accumulated)
    k = len(decays)
    return sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :]


# Variances below this share of the mean square count as 0, because they are
# rounding noise of the log-domain sums (relative error about 1e-11 after a day
# at lambda 5). A standard deviation below about 3e-5 of the mean reads as 0.
_RELATIVE_VARIANCE_FLOOR = 1e-9


def _mean_std(weight: np.ndarray, linear: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = linear / weight
    mean_square = squares / weight
    variance = mean_square - mean * mean
    variance[variance <= _RELATIVE_VARIANCE_FLOOR * mean_square] = 0.0
    return mean, np.sqrt(variance)


def _key_codes(packets: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    parts = [category_strings(packets, column) for column in columns]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "|" + part
    return pd.factorize(joined)[0]


def _statistics_for_key(codes: np.ndarray, times_s: np.ndarray, sizes: np.ndarray, with_jitter: bool) -> dict[str, np.ndarray]:
    """Compute one key type's statistics for every frame, as arrays of shape [frames, lambdas]."""
    decays = np.asarray(DECAY_LAMBDAS, dtype=np.float64)
    frames, k = len(codes), len(decays)
    out = {name: np.zeros((frames, k)) for name in _SIZE_STATISTICS + (_JITTER_STATISTICS if with_jitter else ())}

    order = np.lexsort((np.arange(frames), codes))
    boundaries = np.flatnonzero(np.diff(codes[order])) + 1
    for group in np.split(order, boundaries):
        group_times = times_s[group]
        weight, linear, squares = damped_sums(group_times, sizes[group], decays)
        mean, std = _mean_std(weight, linear, squares)
        out["weight"][group], out["mean_bytes"][group], out["std_bytes"][group] = weight, mean, std
        if with_jitter:
            jitter = np.diff(group_times, prepend=group_times[0])
            weight, linear, squares = damped_sums(group_times, jitter, decays)
            out["jitter_mean_s"][group], out["jitter_std_s"][group] = _mean_std(weight, linear, squares)
    return out


def derive_stats_rows(packets: pd.DataFrame) -> pd.DataFrame:
    """Build ``stats`` feature rows for one capture's packets, sorted by time, then frame number.

    Each frame's statistics depend only on itself and earlier frames of the same
    capture, so statistics of a training frame never see validation or test frames.
    """
    rows = packet_row_metadata(packets)
    if packets.empty:
        for name in stats_feature_names():
            rows[name] = pd.Series(dtype="float64")
        return rows

    times_ns = packets["timestamp_ns"].to_numpy(np.int64)
    times_s = (times_ns - times_ns.min()).astype(np.float64) / 1e9
    sizes = numeric_column(packets, "frame_len")

    for key, columns in _KEYS.items():
        statistics = _statistics_for_key(_key_codes(packets, columns), times_s, sizes, with_jitter=key == "pair")
        for statistic, values in statistics.items():
            for index, decay in enumerate(DECAY_LAMBDAS):
                rows[f"{key}_l{_lambda_label(decay)}_{statistic}"] = values[:, index]
    return rows


STATS = FeatureSet(
    name="stats",
    row_unit="frame",
    numeric_features=stats_feature_names(),
    categorical_features=(),
    derive=derive_stats_rows,
    group_by=("capture_id",),
)
