"""Non-neural baselines scored on the same windows as the autoencoders.

Each baseline is fitted on normal training windows and returns one score per
window with the same direction as the reconstruction error: higher means more
anomalous. The unit differs per detector, so each gets its own threshold, set
by the same methods (``models.thresholds``) on its normal validation scores.

Windows are float32 arrays [windows, steps, features] scaled to [0, 1].
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np

logger = logging.getLogger(__name__)

BASELINE_KINDS = ("isolation_forest", "zscore")

# A feature that is constant in training would divide by zero; its deviation is
# measured against this floor instead, in scaled units.
ZSCORE_MIN_STD = 1e-3


def stack_windows(blocks: Iterable[np.ndarray]) -> np.ndarray:
    """Concatenate blocks of windows into one float32 array [windows, steps, features]."""
    arrays = [np.asarray(block, dtype=np.float32) for block in blocks]
    arrays = [block for block in arrays if len(block)]
    if not arrays:
        return np.zeros((0, 0, 0), dtype=np.float32)
    return np.concatenate(arrays)


def _check_windows(windows: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(windows, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(f"{name} must be an array [windows, steps, features], got shape {array.shape}")
    return array


class IsolationForestDetector:
    """scikit-learn's IsolationForest on flattened windows.

    Args:
        seed: random state of the forest, so a run is reproducible.
        n_estimators: trees in the forest.
        max_samples: windows drawn to grow each tree.
    """

    kind = "isolation_forest"

    def __init__(self, *, seed: int = 42, n_estimators: int = 200, max_samples: int = 256) -> None:
        self.seed = seed
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.forest_ = None

    def fit(self, windows: np.ndarray) -> IsolationForestDetector:
        """Grow the forest on normal training windows.

        Raises:
            ValueError: when ``windows`` is empty or not 3-dimensional.
        """
        from sklearn.ensemble import IsolationForest

        array = _check_windows(windows, "windows")
        if len(array) == 0:
            raise ValueError("IsolationForest needs at least one normal training window")
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(array)),
            random_state=self.seed,
        ).fit(array.reshape(len(array), -1))
        return self

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Return float64 scores [windows]: the negated ``score_samples``, so higher is more anomalous."""
        if self.forest_ is None:
            raise ValueError("the IsolationForest detector is not fitted; call fit() first")
        array = _check_windows(windows, "windows")
        if len(array) == 0:
            return np.zeros(0, dtype=np.float64)
        return -self.forest_.score_samples(array.reshape(len(array), -1)).astype(np.float64)


class ZScoreDetector:
    """Per-feature z-scores against normal training frames.

    The mean and standard deviation of each feature are fitted over every frame
    of the normal training windows. A window's score reduces the absolute
    z-scores of all its frames and features with ``reduce``: ``max`` reacts to a
    single extreme value, ``mean`` to a broad shift.

    Args:
        reduce: ``max`` or ``mean``.
    """

    kind = "zscore"

    def __init__(self, *, reduce: str = "mean") -> None:
        if reduce not in ("max", "mean"):
            raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
        self.reduce = reduce
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, windows: np.ndarray) -> ZScoreDetector:
        """Fit the per-feature mean and standard deviation on normal training windows."""
        array = _check_windows(windows, "windows")
        if len(array) == 0:
            raise ValueError("the z-score detector needs at least one normal training window")
        frames = array.reshape(-1, array.shape[2]).astype(np.float64)
        self.mean_ = frames.mean(axis=0)
        self.std_ = np.maximum(frames.std(axis=0), ZSCORE_MIN_STD)
        return self

    def score(self, windows: np.ndarray) -> np.ndarray:
        """Return float64 scores [windows]: the max or mean absolute z-score of each window."""
        if self.mean_ is None or self.std_ is None:
            raise ValueError("the z-score detector is not fitted; call fit() first")
        array = _check_windows(windows, "windows")
        if len(array) == 0:
            return np.zeros(0, dtype=np.float64)
        if array.shape[2] != self.mean_.size:
            raise ValueError(f"windows have {array.shape[2]} features, the detector was fitted on {self.mean_.size}")
        z = np.abs((array.astype(np.float64) - self.mean_) / self.std_)
        return z.max(axis=(1, 2)) if self.reduce == "max" else z.mean(axis=(1, 2))

    def to_json(self) -> dict:
        """Return the fitted state as a JSON-able dict."""
        if self.mean_ is None or self.std_ is None:
            raise ValueError("the z-score detector is not fitted; call fit() first")
        return {"kind": self.kind, "reduce": self.reduce, "mean": self.mean_.tolist(), "std": self.std_.tolist()}


def build_baseline(kind: str, *, seed: int = 42) -> IsolationForestDetector | ZScoreDetector:
    """Return an unfitted baseline of ``kind`` (one of ``BASELINE_KINDS``).

    Raises:
        ValueError: for an unknown kind.
    """
    if kind == "isolation_forest":
        return IsolationForestDetector(seed=seed)
    if kind == "zscore":
        return ZScoreDetector()
    raise ValueError(f"unknown baseline {kind!r}; expected one of {', '.join(BASELINE_KINDS)}")


def evaluate_baselines(
    reader,
    *,
    threshold_method: str,
    k: float = 3.0,
    target_false_alarm_rate: float = 0.01,
    pot_initial_quantile: float = 0.8,
    seed: int = 42,
) -> dict[str, dict]:
    """Fit every baseline on a window set and measure it like the autoencoders.

    Each baseline is fitted on normal training windows, its threshold is set by
    ``threshold_method`` on normal validation windows (normal training windows
    when there is no validation window), and it is scored on the evaluation
    windows (``models.datasets.evaluation_windows``).

    NOTE: the training and evaluation windows are held in memory at once,
    because IsolationForest needs its whole input. Keep window sets for the
    baselines to a few hundred thousand windows.

    Args:
        reader: a ``models.datasets.WindowReader`` over the run's windows.
        threshold_method: one of ``models.thresholds.THRESHOLD_METHODS``.
        k: k of ``mean_k_std``.
        target_false_alarm_rate: target of ``quantile`` and ``pot``.
        pot_initial_quantile: initial quantile of ``pot``.
        seed: random state of IsolationForest.

    Returns:
        Per baseline kind: the threshold (``to_json``), and with labels of both
        classes accuracy, precision, recall, F1, confusion, ROC-AUC and PR-AUC;
        always ``flagged_share`` and ``evaluated_windows``.
    """
    from models.datasets import evaluation_windows, normal_windows_of
    from models.metrics import binary_metrics, flagged_share, ranking_metrics
    from models.thresholds import fit_threshold

    training = stack_windows(reader.iter_windows(normal_windows_of("train")))
    calibration = stack_windows(reader.iter_windows(normal_windows_of("validation")))
    if len(calibration) == 0:
        logger.warning("No normal validation windows; the baselines calibrate on training windows")
        calibration = training
    evaluation = stack_windows(reader.iter_windows(evaluation_windows))
    labels = reader.metadata(evaluation_windows)["label"]

    results: dict[str, dict] = {}
    for kind in BASELINE_KINDS:
        detector = build_baseline(kind, seed=seed).fit(training)
        threshold = fit_threshold(
            threshold_method, detector.score(calibration), k=k,
            target_false_alarm_rate=target_false_alarm_rate, pot_initial_quantile=pot_initial_quantile,
        )
        scores = detector.score(evaluation)
        flagged = threshold.flag(scores)
        metrics: dict = {"threshold": threshold.to_json()}
        labelled = labels.notna().to_numpy()
        if labelled.any():
            truth = labels[labelled].to_numpy(int)
            metrics.update(binary_metrics(truth, flagged[labelled]))
            metrics.update(ranking_metrics(truth, scores[labelled]))
        metrics["flagged_share"] = flagged_share(flagged)
        metrics["evaluated_windows"] = int(len(scores))
        results[kind] = metrics
    return results
