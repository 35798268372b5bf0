"""One reader's (or a pooled set of readings') discrimination of synthetic from real.

Inputs are the truth (True = synthetic, the positive class) and a rating of "synthetic" on an ordinal
scale; a call is "synthetic" when the rating is above `threshold`. In the product the rating is the
10-point verdict x confidence scale (real 5 = 1 ... real 1 = 5, synthetic 1 = 6 ... synthetic 5 = 10),
so the threshold is 5.5.

Chance tests hold at any ratio of real to synthetic and any lean of the reader: AUC = 1/2 (DeLong's
z-test) and Youden's J = 0 (Fisher's exact test on the 2 x 2 table). Accuracy is reported, but never
tested against 50 %: a reader who always says "synthetic" on a 1:2 study is 67 % accurate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.stats.proportions import Proportion, fisher_p, proportion
from app.stats.roc import Auc, RocPoint, auc_with_ci, roc_points

__all__ = ["ReaderSummary", "summarise"]


@dataclass(frozen=True)
class ReaderSummary:
    """Discrimination figures of a set of readings, each with its interval."""

    n: int
    auc: Auc
    sensitivity: Proportion  # synthetic called synthetic
    specificity: Proportion  # real called real
    fooling_rate: Proportion  # synthetic called real
    accuracy: Proportion  # descriptive only: its chance level depends on ratio and bias
    youden: float | None
    fisher_p: float | None
    roc: list[RocPoint]


def summarise(truth: Sequence[bool], ratings: Sequence[float], *, threshold: float = 5.5) -> ReaderSummary:
    """AUC with DeLong CI and chance test, Wilson proportions, Youden's J with Fisher's p, ROC points."""
    y = np.asarray(truth, dtype=bool)  # (n,)
    r = np.asarray(ratings, dtype=np.float64)  # (n,)
    if y.shape != r.shape:
        raise ValueError(f"truth and ratings differ in length: {y.size} vs {r.size}")
    called = r > threshold
    tp, fn = int((y & called).sum()), int((y & ~called).sum())
    fp, tn = int((~y & called).sum()), int((~y & ~called).sum())
    sens, spec = proportion(tp, tp + fn), proportion(tn, tn + fp)
    youden = None
    if sens.value is not None and spec.value is not None:
        youden = sens.value + spec.value - 1.0
    return ReaderSummary(
        n=int(y.size),
        auc=auc_with_ci(y, r),
        sensitivity=sens,
        specificity=spec,
        fooling_rate=proportion(fn, tp + fn),
        accuracy=proportion(tp + tn, int(y.size)),
        youden=youden,
        fisher_p=fisher_p(tp, fn, fp, tn),
        roc=roc_points(y, r),
    )
