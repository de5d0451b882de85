"""Thresholds on window scores, calibrated on normal validation windows only.

Three methods set the value from the scores of held-out normal windows:

- ``mean_k_std``: mean + k population standard deviations (the rule of the study
  netae starts from). Read as a Gaussian rule it targets a tiny rate (0.0013
  for k = 3), but reconstruction errors are rarely Gaussian. For any score
  distribution it guarantees only Cantelli's bound ``1 / (1 + k^2)``, and only
  approximately, because the mean and deviation are estimated.
- ``quantile``: the conformal (1 - target false-alarm rate) quantile, whose
  rate holds for exchangeable scores of any distribution.
- ``pot``: peaks over threshold. Excesses above a high initial quantile are
  fitted with a generalised Pareto distribution (``scipy.stats.genpareto``),
  and the threshold is the score whose modelled tail probability equals the
  target false-alarm rate. For a target below about 1 / n, with n normal
  scores, this extrapolates past the largest of them, where a quantile of the
  scores cannot.

Test labels never enter calibration: ``calibration_scores`` keeps validation
windows that are not labelled anomalous, so a threshold is the same whatever
the test labels are. ``oracle_threshold`` reads labels by design. It shows how
far a label-free threshold is from the best one and must never set a deployed
threshold.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

THRESHOLD_METHODS = ("mean_k_std", "quantile", "pot")
ORACLE_METHOD = "oracle_best_f1"

# Fewer excesses than this make the Pareto fit unstable, so POT then falls back
# to the conformal quantile and records why in its parameters.
POT_MIN_EXCESSES = 10


@dataclass(frozen=True)
class Threshold:
    """A fitted threshold: a window is anomalous when its score is greater than ``value``.

    Attributes:
        method: how the value was derived (one of ``THRESHOLD_METHODS``, or
            ``oracle_best_f1`` for the label-informed reference).
        value: the threshold on the window score, in the score's unit.
        params: the inputs and fitted values of the method, for example k, mean
            and std for ``mean_k_std``, and the number of normal windows.
    """

    method: str
    value: float
    params: dict

    def to_json(self) -> dict:
        """Return the threshold as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict) -> Threshold:
        """Rebuild a threshold saved by ``to_json``."""
        return cls(method=document["method"], value=float(document["value"]), params=dict(document["params"]))

    def flag(self, scores: np.ndarray) -> np.ndarray:
        """Return a boolean array: True where a score is above the threshold."""
        return np.asarray(scores) > self.value


def _checked_scores(normal_scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("cannot calibrate a threshold on zero normal windows; supply more normal traffic")
    if not np.all(np.isfinite(scores)):
        raise ValueError("normal window scores contain NaN or infinity; check the windows validation")
    return scores


def _check_rate(target_false_alarm_rate: float) -> None:
    if not 0.0 < target_false_alarm_rate < 0.5:
        raise ValueError(f"target_false_alarm_rate must be in (0, 0.5), got {target_false_alarm_rate}")


def mean_k_std(normal_scores: np.ndarray, *, k: float = 3.0) -> Threshold:
    """Set the threshold at mean + k standard deviations of normal-window scores.

    Args:
        normal_scores: scores of held-out windows known or assumed to be normal;
            never windows labelled anomalous.
        k: how many population standard deviations above the mean.

    Raises:
        ValueError: when there are no scores, a score is not finite, or k <= 0.
    """
    scores = _checked_scores(normal_scores)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    mean, std = float(scores.mean()), float(scores.std())
    return Threshold(
        method="mean_k_std",
        value=mean + k * std,
        params={"k": float(k), "mean": mean, "std": std, "windows": int(scores.size)},
    )


def quantile(normal_scores: np.ndarray, *, target_false_alarm_rate: float = 0.01, quiet: bool = False) -> Threshold:
    """Set the threshold at the conformal (1 - rate) quantile of normal-window scores.

    The value is the ``ceil((n + 1) * (1 - rate))``-th smallest of the ``n``
    scores (split conformal prediction). For a new window whose score is
    exchangeable with the calibration scores, the chance that it lies above
    the threshold is then at most ``rate``, whatever the score distribution.
    The plain empirical quantile overshoots that by about ``1 / n``. At most
    ``rate`` of the calibration windows lie strictly above the value. With
    fewer than ``1 / rate - 1`` scores the rank exceeds ``n``: the value is
    then the largest score, ``params["too_few_windows"]`` explains that, and the
    guarantee weakens to ``1 / (n + 1)``.

    Args:
        normal_scores: scores of held-out normal windows.
        target_false_alarm_rate: share of normal windows allowed above the
            threshold, in (0, 0.5).
        quiet: log the too-few-windows case at DEBUG instead of WARNING (see
            ``fit_threshold``).

    Raises:
        ValueError: for no scores, non-finite scores or a rate outside (0, 0.5).
    """
    scores = np.sort(_checked_scores(normal_scores))
    _check_rate(target_false_alarm_rate)
    level = 1.0 - target_false_alarm_rate
    count = scores.size
    # The small tolerance keeps a product such as 1000 * 0.99 from rounding up a rank.
    rank = math.ceil((count + 1) * level - 1e-9)
    params = {"target_false_alarm_rate": float(target_false_alarm_rate), "level": level, "windows": int(count)}
    if rank > count:
        rank = count
        params["too_few_windows"] = (
            f"{count} normal windows guarantee a false-alarm rate of at most {1 / (count + 1):.4g}, "
            f"not {target_false_alarm_rate}; at least {math.ceil(1 / target_false_alarm_rate) - 1} are needed"
        )
        logger.log(_fallback_level(quiet), "Quantile threshold: %s", params["too_few_windows"])
    params["rank"] = int(rank)
    return Threshold(method="quantile", value=float(scores[rank - 1]), params=params)


def peaks_over_threshold(
    normal_scores: np.ndarray,
    *,
    target_false_alarm_rate: float = 0.01,
    initial_quantile: float = 0.8,
    quiet: bool = False,
) -> Threshold:
    """Set the threshold by fitting a generalised Pareto tail to normal-window scores.

    Steps: take the initial threshold ``t`` at ``initial_quantile`` of the scores.
    Fit a generalised Pareto distribution (location 0) to the excesses
    ``score - t`` of the scores above ``t``. Then solve
    ``P(score > z) = (n_t / n) * (1 - F(z - t)) = rate`` for ``z``, where ``n_t`` is
    the number of excesses, ``n`` the number of scores and ``F`` the fitted
    distribution function.

    Falls back to the conformal quantile (``params["fallback"]`` names why) when
    fewer than ``POT_MIN_EXCESSES`` scores exceed ``t``, or when the target rate
    is not below the share of excesses ``n_t / n``, since the tail model then does
    not apply.

    Args:
        normal_scores: scores of held-out normal windows.
        target_false_alarm_rate: modelled share of normal windows above the
            threshold, in (0, 0.5).
        initial_quantile: level of the initial threshold ``t``, in (0.5, 1).
        quiet: log a fallback at DEBUG instead of WARNING (see ``fit_threshold``).

    Raises:
        ValueError: for no scores, non-finite scores, or a parameter out of range.
    """
    from scipy.stats import genpareto

    scores = _checked_scores(normal_scores)
    _check_rate(target_false_alarm_rate)
    if not 0.5 < initial_quantile < 1.0:
        raise ValueError(f"initial_quantile must be in (0.5, 1), got {initial_quantile}")

    initial = float(np.quantile(scores, initial_quantile))
    excesses = scores[scores > initial] - initial
    params = {
        "target_false_alarm_rate": float(target_false_alarm_rate),
        "initial_quantile": float(initial_quantile),
        "initial_threshold": initial,
        "excesses": int(excesses.size),
        "windows": int(scores.size),
    }
    tail_share = excesses.size / scores.size
    fallback = None
    if excesses.size < POT_MIN_EXCESSES:
        fallback = f"only {excesses.size} scores above the initial threshold; at least {POT_MIN_EXCESSES} are needed"
    elif target_false_alarm_rate >= tail_share:
        fallback = f"the target rate is not below the share of excesses ({tail_share:.4g})"
    if fallback is not None:
        logger.log(_fallback_level(quiet), "Peaks over threshold fell back to the conformal quantile: %s", fallback)
        conformal = quantile(scores, target_false_alarm_rate=target_false_alarm_rate, quiet=quiet)
        # The quantile's own caveat, such as too few windows for the target, stays with the threshold.
        caveats = {name: conformal.params[name] for name in ("too_few_windows",) if name in conformal.params}
        return Threshold(method="pot", value=conformal.value, params={**params, "fallback": fallback, **caveats})

    shape, _location, scale = genpareto.fit(excesses, floc=0.0)
    ratio = target_false_alarm_rate / tail_share
    if abs(shape) < 1e-9:
        value = initial - scale * math.log(ratio)
    else:
        value = initial + scale / shape * (ratio ** (-shape) - 1.0)
    return Threshold(method="pot", value=float(value), params={**params, "shape": float(shape), "scale": float(scale)})


def _fallback_level(quiet: bool) -> int:
    return logging.DEBUG if quiet else logging.WARNING


def fit_threshold(
    method: str,
    normal_scores: np.ndarray,
    *,
    k: float = 3.0,
    target_false_alarm_rate: float = 0.01,
    pot_initial_quantile: float = 0.8,
    quiet: bool = False,
) -> Threshold:
    """Calibrate a threshold of ``method`` on the scores of normal windows.

    Args:
        method: one of ``THRESHOLD_METHODS``.
        normal_scores: scores of held-out normal windows.
        k: k of ``mean_k_std``.
        target_false_alarm_rate: target of ``quantile`` and ``pot``.
        pot_initial_quantile: level of the initial threshold of ``pot``.
        quiet: log fallbacks (too few windows, no Pareto fit) at DEBUG instead
            of WARNING. Checks that refit on part of the windows set it, so
            their refits do not read as warnings about the deployed threshold.
            ``params`` records a fallback either way.

    Raises:
        ValueError: for an unknown method, and as the method raises.
    """
    if method == "mean_k_std":
        return mean_k_std(normal_scores, k=k)
    if method == "quantile":
        return quantile(normal_scores, target_false_alarm_rate=target_false_alarm_rate, quiet=quiet)
    if method == "pot":
        return peaks_over_threshold(
            normal_scores, target_false_alarm_rate=target_false_alarm_rate, initial_quantile=pot_initial_quantile,
            quiet=quiet,
        )
    raise ValueError(f"unknown threshold method {method!r}; expected one of {', '.join(THRESHOLD_METHODS)}")


def calibration_scores(metadata: pd.DataFrame, scores: np.ndarray) -> np.ndarray:
    """Return the scores of the windows a threshold may be calibrated on.

    Those are the ``validation`` windows not labelled anomalous (unlabelled
    counts as normal). Test windows and their labels are never read.

    Args:
        metadata: window metadata with ``split`` and ``label`` columns, row i
            describing ``scores[i]``.
        scores: [windows] window scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(metadata) != scores.size:
        raise ValueError(f"metadata has {len(metadata)} rows but there are {scores.size} scores")
    return scores[calibration_mask(metadata)]


def calibration_mask(metadata: pd.DataFrame) -> np.ndarray:
    """Return True for the windows a threshold may be calibrated on (see ``calibration_scores``)."""
    in_validation = (metadata["split"] == "validation").to_numpy()
    # fillna covers nullable integer labels, whose comparison gives NA for an unlabelled window.
    labelled_anomalous = pd.to_numeric(metadata["label"], errors="coerce").eq(1).fillna(False).to_numpy(bool)
    return in_validation & ~labelled_anomalous


def oracle_threshold(labels: np.ndarray, scores: np.ndarray) -> Threshold:
    """Return the threshold with the best F1 on labelled windows: a reference, never a decision.

    It reads the evaluation labels, so any metric computed with it is optimistic.
    ``models.metrics.oracle_metrics`` measures it for the nightly report and the
    evaluation bench, which show it beside the label-free threshold.

    Raises:
        ValueError: when the labels hold no anomalous window.
    """
    from sklearn.metrics import precision_recall_curve

    truth = np.asarray(labels).astype(int)
    values = np.asarray(scores, dtype=np.float64)
    if not truth.any():
        raise ValueError("the oracle threshold needs at least one anomalous window")
    precision, recall, cut_points = precision_recall_curve(truth, values)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)[:-1]
    best = int(np.argmax(f1))
    # precision_recall_curve flags score >= cut point; Threshold.flag uses ">", so
    # step to the largest score below the cut point.
    below = values[values < cut_points[best]]
    value = float(below.max()) if below.size else float(np.nextafter(cut_points[best], -np.inf))
    return Threshold(method=ORACLE_METHOD, value=value, params={"f1": float(f1[best]), "windows": int(values.size)})
