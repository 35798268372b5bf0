"""Proportions with Wilson intervals, and chance tests that hold at any class ratio and reader bias.

Wilson (1927) score intervals keep their coverage near 0 and 1 where the Wald interval fails. A reader
who cannot tell real from synthetic is one whose calls are independent of the truth: Youden's
J = sensitivity + specificity - 1 is then 0 whatever the ratio of the classes and however the reader
leans. Fisher's exact test of independence on the 2 x 2 table tests exactly that; accuracy against 50 %
does not (a reader who always says "synthetic" on a 1:2 study is 67 % accurate and knows nothing).
The plain exact test is conservative on a study's few dozen cases (it rejects 2-3 % of null readers at
20 + 20 cases where 5 % is asked); Lancaster's (1961) mid-p, which counts the observed table's own
probability half, brings the rate back near 5 % (tests/unit/test_null_simulation.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Proportion", "binomial_p", "fisher_p", "proportion", "wilson_interval", "z_value"]


@dataclass(frozen=True)
class Proportion:
    """A count k out of n with its point estimate and Wilson interval (None when n == 0)."""

    k: int
    n: int
    value: float | None
    low: float | None
    high: float | None


def z_value(level: float) -> float:
    """The two-sided standard normal quantile for a confidence level strictly between 0 and 1."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {level}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _check_count(k: int, n: int) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; raises ValueError when n == 0."""
    _check_count(k, n)
    if n == 0:
        raise ValueError("the Wilson interval is undefined for n == 0; use proportion() for a None result")
    z = z_value(confidence)
    p = k / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # At k == 0 and k == n the exact bound is 0 or 1; rounding could leave it a hair outside.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def proportion(k: int, n: int, *, confidence: float = 0.95) -> Proportion:
    """k/n with its Wilson interval; value and bounds are None when n == 0."""
    _check_count(k, n)
    if n == 0:
        return Proportion(k=k, n=n, value=None, low=None, high=None)
    low, high = wilson_interval(k, n, confidence=confidence)
    return Proportion(k=k, n=n, value=k / n, low=low, high=high)


def binomial_p(k: int, n: int, *, p: float = 0.5) -> float | None:
    """Exact two-sided binomial test p-value of k in n against p; None when n == 0."""
    _check_count(k, n)
    if n == 0:
        return None
    return float(stats.binomtest(k, n, p=p, alternative="two-sided").pvalue)


def fisher_p(tp: int, fn: int, fp: int, tn: int, *, mid: bool = True) -> float | None:
    """Two-sided Fisher p of Youden's J = 0 (calls independent of truth), mid-p by default; None if a class
    is empty."""
    for count in (tp, fn, fp, tn):
        if count < 0:
            raise ValueError(f"counts must be non-negative, got {(tp, fn, fp, tn)}")
    positives, negatives, called = tp + fn, fp + tn, tp + fp
    if positives == 0 or negatives == 0:
        return None
    # Tables with the margins fixed differ only in tp, which is hypergeometric under independence.
    support = np.arange(max(0, called - negatives), min(called, positives) + 1)
    probs = stats.hypergeom.pmf(support, positives + negatives, positives, called)
    observed = stats.hypergeom.pmf(tp, positives + negatives, positives, called)
    tie = np.isclose(probs, observed, rtol=1e-7, atol=0.0)  # as scipy's fisher_exact compares
    more_extreme = float(probs[(probs < observed) & ~tie].sum())
    p = more_extreme + (0.5 if mid else 1.0) * float(probs[tie].sum())
    return min(1.0, p)
