"""Reader-study statistics: proportions, binomial tests, rating AUC and agreement (pure functions).

Convention: positive = synthetic. Sensitivity is the share of synthetic images called synthetic,
specificity the share of real images called real. Wherever a ratio is undefined (empty denominator,
a single class, a single category) the result is None, never NaN, so the results page can show "—".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "FindingAgreement",
    "Proportion",
    "ReaderMetrics",
    "auc_from_scores",
    "binomial_p",
    "cohen_kappa",
    "finding_agreement",
    "fleiss_kappa",
    "fleiss_kappa_from_ratings",
    "proportion",
    "rating_score",
    "reader_metrics",
    "wilson_interval",
]


@dataclass(frozen=True)
class Proportion:
    """A count k out of n with its point estimate and Wilson interval (None when n == 0)."""

    k: int
    n: int
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ReaderMetrics:
    """Accuracy, sensitivity, specificity, binomial p-value and rating AUC of a set of readings."""

    n: int
    accuracy: Proportion
    sensitivity: Proportion
    specificity: Proportion
    p_value: float | None
    auc: float | None
    auc_low: float | None
    auc_high: float | None


@dataclass(frozen=True)
class FindingAgreement:
    """Agreement between the findings readers marked and the image labels, for one finding."""

    finding: str
    n: int
    reader_positive: int
    label_positive: int
    both: int
    agreement: Proportion
    kappa: float | None


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def _check_count(k: int, n: int) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; raises ValueError when n == 0."""
    _check_count(k, n)
    if n == 0:
        raise ValueError("the Wilson interval is undefined for n == 0; use proportion() for a None result")
    z = _z(confidence)
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


def rating_score(called_synthetic: bool, confidence: int) -> int:
    """Ordinal score decision x confidence: +c for 'synthetic', -c for 'real' (higher = more synthetic)."""
    # Confidence must be >= 1 so that every 'real' score sorts below every 'synthetic' score.
    if confidence < 1:
        raise ValueError(f"confidence must be >= 1, got {confidence}")
    return int(confidence) if called_synthetic else -int(confidence)


def auc_from_scores(truth_synthetic: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Mann-Whitney AUC P(score_synthetic > score_real) with ties counted half; None if a class is empty."""
    truth = np.asarray([bool(t) for t in truth_synthetic], dtype=bool)  # (n,)
    values = np.asarray(scores, dtype=float)  # (n,)
    if truth.shape != values.shape:
        raise ValueError(f"truth and scores differ in length: {truth.shape[0]} vs {values.shape[0]}")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite")
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    # Average ranks give each tied pair half a win, which is exactly the Mann-Whitney tie rule.
    ranks = stats.rankdata(values)  # (n,)
    u_pos = float(ranks[truth].sum()) - n_pos * (n_pos + 1) / 2.0
    return u_pos / (n_pos * n_neg)


def auc_interval(auc: float, n_pos: int, n_neg: int, confidence: float = 0.95) -> tuple[float, float]:
    """Hanley-McNeil interval of an AUC from n_pos positives and n_neg negatives, clipped to [0, 1]."""
    # Hanley & McNeil (1982): Q1 pairs with the positives (synthetic), Q2 with the negatives (real).
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1.0 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    half = _z(confidence) * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def reader_metrics(
    truth_synthetic: Sequence[bool],
    called_synthetic: Sequence[bool],
    confidence: Sequence[int] | None = None,
) -> ReaderMetrics:
    """Accuracy, sensitivity, specificity, binomial p and AUC (from ratings, else from the calls alone)."""
    truth = [bool(t) for t in truth_synthetic]
    called = [bool(c) for c in called_synthetic]
    if len(truth) != len(called):
        raise ValueError(f"truth and calls differ in length: {len(truth)} vs {len(called)}")
    if confidence is not None and len(confidence) != len(truth):
        raise ValueError(f"confidence and calls differ in length: {len(confidence)} vs {len(truth)}")
    n = len(truth)
    correct = sum(t == c for t, c in zip(truth, called, strict=True))
    n_pos = sum(truth)
    n_neg = n - n_pos
    true_pos = sum(t and c for t, c in zip(truth, called, strict=True))
    true_neg = sum(not t and not c for t, c in zip(truth, called, strict=True))

    # Without ratings every call carries confidence 1, which gives the single-operating-point AUC.
    conf = [1] * n if confidence is None else list(confidence)
    scores = [rating_score(c, k) for c, k in zip(called, conf, strict=True)]
    auc = auc_from_scores(truth, scores)
    auc_low = auc_high = None
    if auc is not None:
        auc_low, auc_high = auc_interval(auc, n_pos, n_neg)

    return ReaderMetrics(
        n=n,
        accuracy=proportion(correct, n),
        sensitivity=proportion(true_pos, n_pos),
        specificity=proportion(true_neg, n_neg),
        p_value=binomial_p(correct, n),
        auc=auc,
        auc_low=auc_low,
        auc_high=auc_high,
    )


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' paired labels; None when empty or chance agreement is total."""
    if len(a) != len(b):
        raise ValueError(f"rater sequences differ in length: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        return None
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    count_a, count_b = Counter(a), Counter(b)
    # Integer arithmetic keeps the 'chance agreement == 1' test exact.
    chance = sum(count_a[c] * count_b[c] for c in count_a)  # expected agreements x n
    if chance == n * n:
        return None
    return (agree * n - chance) / (n * n - chance)


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of an (items, categories) table of rater counts with equal row sums."""
    counts = np.asarray(table)
    if counts.ndim != 2:
        raise ValueError(f"table must be 2-D (items, categories), got shape {counts.shape}")
    if counts.size and (np.any(counts < 0) or not np.all(counts == np.round(counts))):
        raise ValueError("table must hold non-negative whole counts")
    counts = counts.astype(np.int64)  # (N, k)
    n_items = counts.shape[0]
    if n_items == 0:
        return None
    row_sums = counts.sum(axis=1)  # (N,)
    if np.any(row_sums != row_sums[0]):
        raise ValueError("every item must be rated by the same number of raters")
    m = int(row_sums[0])
    if m < 2:
        return None
    col_sums = counts.sum(axis=0)  # (k,)
    total = n_items * m
    chance_num = int((col_sums.astype(object) ** 2).sum())  # P_e * total^2, exact
    if chance_num == total * total:
        return None
    # P_i = (sum_j n_ij^2 - m) / (m (m - 1)), averaged over items.
    p_bar = float(((counts**2).sum(axis=1) - m).sum()) / (n_items * m * (m - 1))
    p_e = chance_num / (total * total)
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa_from_ratings(ratings: Mapping[Hashable, Mapping[Hashable, Hashable]]) -> float | None:
    """Fleiss' kappa from ratings[item][rater] = category, over items with the modal rater count (>= 2)."""
    sizes = Counter(len(by_rater) for by_rater in ratings.values() if len(by_rater) >= 2)
    if not sizes:
        return None
    # Most common rater count; on a tie prefer more raters per item.
    m = max(sizes, key=lambda size: (sizes[size], size))
    items = [by_rater for by_rater in ratings.values() if len(by_rater) == m]
    if len(items) < 2:
        return None
    categories: dict[Hashable, int] = {}
    for by_rater in items:
        for category in by_rater.values():
            categories.setdefault(category, len(categories))
    table = np.zeros((len(items), len(categories)), dtype=np.int64)  # (items, categories)
    for row, by_rater in enumerate(items):
        for category in by_rater.values():
            table[row, categories[category]] += 1
    return fleiss_kappa(table)


def finding_agreement(
    findings: Sequence[str],
    marked: Sequence[Collection[str]],
    labels: Sequence[Collection[str]],
) -> list[FindingAgreement]:
    """Per finding: how often a reading's marks match its image's labels, with Cohen's kappa."""
    if len(marked) != len(labels):
        raise ValueError(f"marked and labels differ in length: {len(marked)} vs {len(labels)}")
    n = len(marked)
    result = []
    for finding in findings:
        mark = [finding in m for m in marked]
        label = [finding in lab for lab in labels]
        same = sum(x == y for x, y in zip(mark, label, strict=True))
        result.append(
            FindingAgreement(
                finding=finding,
                n=n,
                reader_positive=sum(mark),
                label_positive=sum(label),
                both=sum(x and y for x, y in zip(mark, label, strict=True)),
                agreement=proportion(same, n),
                kappa=cohen_kappa(mark, label),
            )
        )
    return result
