"""Threshold calibration on scores: Gaussian (z-score), percentile, F1-optimal."""

from __future__ import annotations

import enum
import math
import numbers

import numpy as np

from .metrics import best_f1, strict_threshold
from .spec import ScoreStats, Threshold


def finite_number(value, name: str) -> float:
    """``value`` as a float if it is a finite real number (numpy scalars included), else ValueError
    naming ``name``: used for thresholds set at run time."""
    try:
        finite = (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
                  and math.isfinite(value) and math.isfinite(float(value)))
    except OverflowError:  # an int beyond float's range
        finite = False
    if not finite:
        raise ValueError(f"`{name}` must be a finite number; received {repr(value)[:60]}")
    return float(value)


def over_threshold(scores, threshold: float):
    """Alarms: True where a score is above ``threshold``, or is no number (NaN), as ``predict``
    decides: a score nobody can read is not taken for a normal one. Scalars in, bool out."""
    decided = ~(np.asarray(scores) <= threshold)
    return bool(decided) if decided.ndim == 0 else decided


class ThresholdMethod(str, enum.Enum):
    GAUSSIAN = "gaussian"      # mean + k * std of normal scores (Gaussian MLE); of their
                               # logits when ``logit`` is set (scores that are probabilities)
    PERCENTILE = "percentile"  # the q-th percentile of normal scores
    F1 = "f1"                  # the cut maximizing F1 on labeled scores


DEFAULT_PARAMS = {ThresholdMethod.GAUSSIAN: {"k": 3.0}, ThresholdMethod.PERCENTILE: {"q": 99.5}}


def calibrate(
    method: ThresholdMethod | str,
    normal_scores: np.ndarray,
    scores: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    **params: float,
) -> Threshold:
    """Choose a threshold.

    Args:
        method: a ``ThresholdMethod`` or its value.
        normal_scores: scores of held-out normal data (Gaussian and percentile use these).
        scores, labels: labeled scores, needed for ``f1``.
        params: ``k`` for Gaussian, ``q`` for percentile. Gaussian with ``logit=1`` fits the
            logits of scores that are probabilities and maps mean + k * std back through the
            sigmoid, so the threshold stays below 1 however skewed the normal scores are.
    """
    try:
        method = ThresholdMethod(method)
    except ValueError:
        choices = [m.value for m in ThresholdMethod]
        raise ValueError(f"`method` must be one of {choices}; received {method!r}") from None
    normal_scores = _finite(normal_scores, "normal_scores")
    merged = {**DEFAULT_PARAMS.get(method, {}), **params}
    if method is ThresholdMethod.GAUSSIAN:
        logit = bool(merged.get("logit", 0))
        values = _logit(normal_scores) if logit else normal_scores
        k = float(merged["k"])
        if not k >= 0:  # below the normal mean: most normal items would alarm
            raise ValueError(f"`k` must be a number >= 0 (mean + k std of the normal scores); "
                             f"received {merged['k']!r}")
        mean, std = float(np.mean(values)), float(np.std(values))
        value = mean + k * std
        fitted = {"k": float(merged["k"]), "mean": mean, "std": std}
        if logit:
            return Threshold(float(1.0 / (1.0 + np.exp(-value))), method.value,
                             {**fitted, "logit": 1.0})
        return Threshold(value, method.value, fitted)
    if method is ThresholdMethod.PERCENTILE:
        q = float(merged["q"])
        if not 0 <= q <= 100:
            raise ValueError(f"`q` must be in [0, 100]; received {q}")
        return Threshold(float(np.percentile(normal_scores, q)), method.value, {"q": q})
    if scores is None or labels is None:
        raise ValueError("method 'f1' needs labeled `scores` and `labels`; received none")
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        raise ValueError("method 'f1' needs at least one anomalous label; received none")
    f1, cut = best_f1(scores, labels)
    # Alarms are score > threshold at run time. Every threshold between the best cut and the
    # score below it gives the same F1 here; the middle of that gap (not the cut itself, the
    # weakest labeled anomaly's score) leaves room for an anomaly a little weaker than those
    # labeled, as the threshold `vigil eval` offers does.
    return Threshold(strict_threshold(scores, cut), method.value, {"f1": f1})


def calibrate_labeled(method: ThresholdMethod | str, scores: np.ndarray, labels: np.ndarray,
                      params: dict | None = None) -> Threshold:
    """``calibrate`` on validation ``scores`` whose ``labels`` mark the anomalous ones: F1 on
    all of them, Gaussian or percentile (with ``params``) on the normal ones. The one rule
    training fits a threshold by and the export refits it by."""
    labels = np.asarray(labels, dtype=bool)
    if ThresholdMethod(method) is ThresholdMethod.F1:
        return calibrate(method, scores[~labels], scores=scores, labels=labels)
    return calibrate(method, scores[~labels], **(params or {}))


def score_stats(normal_scores: np.ndarray) -> ScoreStats:
    """Summary statistics of normal scores, stored in the artifact for drift checks."""
    s = _finite(normal_scores, "normal_scores")
    p50, p95, p99 = np.percentile(s, [50, 95, 99])
    return ScoreStats(count=int(s.size), mean=float(s.mean()), std=float(s.std()),
                      p50=float(p50), p95=float(p95), p99=float(p99), max=float(s.max()))


def _logit(probabilities: np.ndarray) -> np.ndarray:
    low, high = float(probabilities.min()), float(probabilities.max())
    if low < 0 or high > 1:
        raise ValueError(f"a Gaussian with `logit` needs probabilities in [0, 1]; received "
                         f"scores from {low:.6g} to {high:.6g}")
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError(f"`{name}` must not be empty")
    if not np.isfinite(values).all():
        raise ValueError(f"`{name}` must be finite; received {int((~np.isfinite(values)).sum())} "
                         "NaN or infinite values")
    return values
