"""Empirical ROC analysis: curve, trapezoidal AUC, DeLong variance and the test of AUC = 0.5.

The trapezoidal AUC equals the Mann-Whitney statistic: the chance that a random positive scores above
a random negative, ties counting half. DeLong, DeLong & Clarke-Pearson (1988) write it as the mean of
structural components, one per positive (V10: the share of negatives it beats) and one per negative
(V01: the share of positives that beat it); their sample variances give the AUC's variance and, across
readers or modalities, the covariances that multi-reader analysis needs (`app.stats.mrmc`). Sun & Xu
(2014) compute the components from midranks in O(n log n), as here.

Where DeLong's variance is zero (perfect separation, or a single case in a class), Hanley & McNeil's
(1982) variance at an AUC half a pair short of the observed one stands in, so that an interval never
collapses to a point on small samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from app.stats.proportions import z_value

__all__ = [
    "Auc",
    "RocPoint",
    "auc",
    "auc_with_ci",
    "components",
    "delong_variance",
    "hanley_mcneil_interval",
    "hanley_mcneil_variance",
    "roc_points",
]


@dataclass(frozen=True)
class Auc:
    """An AUC with its standard error, interval and the two-sided p-value of AUC = 0.5."""

    value: float | None
    se: float | None
    low: float | None
    high: float | None
    p_chance: float | None
    positives: int
    negatives: int


@dataclass(frozen=True)
class RocPoint:
    """One operating point: calling positive every case scored at or above `threshold`."""

    threshold: float
    fpr: float
    tpr: float


def _split(truth: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray):
    y = np.asarray(truth).astype(bool)  # (n,)
    s = np.asarray(scores, dtype=np.float64)  # (n,)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"truth and scores must be 1-D of one length, got {y.shape} and {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    return s[y], s[~y]


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy's rankdata 'average', without its overhead)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # (distinct,) rank of the last member of each tie group
    return (ends - (counts - 1) / 2.0)[inverse]


def components(truth, scores) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(AUC, V10 per positive (m,), V01 per negative (n,)); None when a class is empty."""
    pos, neg = _split(truth, scores)
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        return None
    # Midranks in the pooled sample minus midranks within the own class count the cases of the
    # other class below (ties half): r_all(x_i) - r_pos(x_i) = #neg < x_i + #neg == x_i / 2.
    r_all = _midranks(np.concatenate([pos, neg]))  # (m + n,)
    v10 = (r_all[:m] - _midranks(pos)) / n  # (m,)
    v01 = 1.0 - (r_all[m:] - _midranks(neg)) / m  # (n,)
    return float(v10.mean()), v10, v01


def auc(truth, scores) -> float | None:
    """Trapezoidal (Mann-Whitney) AUC, ties counted half; None when a class is empty."""
    c = components(truth, scores)
    return None if c is None else c[0]


def hanley_mcneil_variance(value: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil's (1982) variance of an AUC from its value and the class sizes."""
    m, n, a = positives, negatives, value
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    return (a * (1.0 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)


def hanley_mcneil_interval(value: float, positives: int, negatives: int, *, level: float = 0.95):
    """Wald interval of an AUC from Hanley & McNeil's variance, clipped to [0, 1]."""
    half = z_value(level) * math.sqrt(max(hanley_mcneil_variance(value, positives, negatives), 0.0))
    return max(0.0, value - half), min(1.0, value + half)


def delong_variance(v10: np.ndarray, v01: np.ndarray) -> float:
    """DeLong's variance of the AUC from its structural components (0 where a class has one case)."""
    m, n = v10.size, v01.size
    return (float(np.var(v10, ddof=1)) / m if m > 1 else 0.0) + (
        float(np.var(v01, ddof=1)) / n if n > 1 else 0.0
    )


def auc_with_ci(truth, scores, *, level: float = 0.95) -> Auc:
    """AUC with DeLong standard error, a Wald interval clipped to [0, 1] and the z-test of AUC = 0.5."""
    pos, neg = _split(truth, scores)
    m, n = pos.size, neg.size
    c = components(truth, scores)
    if c is None:
        return Auc(None, None, None, None, None, m, n)
    value, v10, v01 = c
    var = delong_variance(v10, v01)
    if var <= 0.0 or m < 2 or n < 2:
        edge = 0.5 / (m * n)
        var = hanley_mcneil_variance(min(max(value, edge), 1.0 - edge), m, n)
    se = math.sqrt(max(var, 0.0))
    z = z_value(level)
    p = float(2.0 * stats.norm.sf(abs(value - 0.5) / se)) if se > 0 else None
    return Auc(value, se, max(0.0, value - z * se), min(1.0, value + z * se), p, m, n)


def roc_points(truth, scores) -> list[RocPoint]:
    """The empirical ROC curve from (0, 0) to (1, 1), one point per distinct score, highest first."""
    pos, neg = _split(truth, scores)
    if pos.size == 0 or neg.size == 0:
        return []
    points = [RocPoint(math.inf, 0.0, 0.0)]
    for t in np.unique(np.concatenate([pos, neg]))[::-1]:
        points.append(RocPoint(float(t), float((neg >= t).mean()), float((pos >= t).mean())))
    return points
