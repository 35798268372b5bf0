"""AUROC with DeLong 95 % intervals (DeLong et al. 1988; Sun & Xu 2014's fast form) and thresholds.

AUROC is the Mann-Whitney statistic: the chance that a random positive scores above a random negative,
ties counting half. Its variance comes from DeLong's structural components, computed from midranks in
O(n log n); where that spread is zero (perfect separation) Hanley & McNeil's (1982) variance stands in.
A finding's operating threshold maximises Youden's J (sensitivity + specificity - 1) on the
validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class Auroc:
    """One finding's AUROC with its 95 % interval and counts; value None when a class is missing."""

    value: float | None
    low: float | None
    high: float | None
    positives: int
    negatives: int


def auroc(labels: np.ndarray, scores: np.ndarray, *, level: float = 0.95) -> Auroc:
    """AUROC of `scores` (N,) for binary `labels` (N,), with a DeLong interval clipped to [0, 1]."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return Auroc(None, None, None, m, n)
    # Midranks within each class and in the pooled sample (ties share their average rank).
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos, r_neg = rankdata(pos), rankdata(neg)
    auc = (r_all[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (r_all[:m] - r_pos) / n  # per positive: share of negatives it beats
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # per negative: share of positives that beat it
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    if var <= 0.0 or m < 2 or n < 2:
        # Perfect separation (or a single member) gives DeLong no spread; Hanley & McNeil's variance at
        # an AUROC half a pair short of the observed one keeps the interval honest about small samples.
        a = min(max(auc, 0.5 / (m * n)), 1 - 0.5 / (m * n))
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        var = (a * (1 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)
    half = norm.ppf(0.5 + level / 2) * np.sqrt(max(var, 0.0))
    return Auroc(float(auc), float(max(0.0, auc - half)), float(min(1.0, auc + half)), m, n)


def auroc_table(labels: np.ndarray, probs: np.ndarray, findings: tuple[str, ...]) -> dict[str, Auroc]:
    """AUROC per finding for (N, F) labels and probabilities."""
    return {f: auroc(labels[:, i], probs[:, i]) for i, f in enumerate(findings)}


def macro_mean(table: dict[str, Auroc]) -> float | None:
    """Mean AUROC over the findings that have both classes."""
    values = [a.value for a in table.values() if a.value is not None]
    return float(np.mean(values)) if values else None


def youden_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(F,) thresholds maximising sensitivity + specificity - 1 per finding (0.5 where a class is missing)."""
    out = np.full(probs.shape[1], 0.5)
    for i in range(probs.shape[1]):
        y, p = labels[:, i].astype(bool), probs[:, i]
        if y.all() or not y.any():
            continue
        candidates = np.unique(p)
        # Sensitivity and specificity at "p >= t" for every candidate t at once.
        sens = (p[y][None, :] >= candidates[:, None]).mean(axis=1)
        spec = (p[~y][None, :] < candidates[:, None]).mean(axis=1)
        best = int(np.argmax(sens + spec - 1))
        # Halfway to the next lower score, so the chosen cut does not sit exactly on a training value.
        lower = candidates[best - 1] if best > 0 else 0.0
        out[i] = float((candidates[best] + lower) / 2)
    return out
