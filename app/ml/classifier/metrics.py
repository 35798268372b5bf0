"""AUROC with DeLong 95 % intervals per finding, and Youden thresholds.

The AUROC and its DeLong interval come from `app.stats.roc` (DeLong et al. 1988, Sun & Xu 2014's
midrank form, Hanley & McNeil's variance where DeLong's is zero), the one implementation the reader
study's statistics use too. A finding's operating threshold maximises Youden's J (sensitivity +
specificity - 1) on the validation split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.stats.roc import auc_with_ci


@dataclass(frozen=True)
class Auroc:
    """One finding's AUROC with its 95 % interval and counts; value None when a class is missing."""

    value: float | None
    low: float | None
    high: float | None
    positives: int
    negatives: int


def auroc(labels: np.ndarray, scores: np.ndarray, *, level: float = 0.95) -> Auroc:
    """AUROC of `scores` (N,) for binary `labels` (N,), with a DeLong interval clipped to [0, 1].

    A classifier that diverged scores NaN: its AUROC is None, as for a missing class, not an error.
    """
    y, s = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        return Auroc(None, None, None, int(y.sum()), int((~y).sum()))
    a = auc_with_ci(y, s, level=level)
    return Auroc(a.value, a.low, a.high, a.positives, a.negatives)


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
