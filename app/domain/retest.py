"""Test-retest: how a reader answers the same film shown twice, the second time unannounced.

Each reader's pairs (first showing, repeat) give Cohen's kappa on the verdicts and the quadratically
weighted kappa on the 10-point ratings (Cohen 1968), per reader and pooled over readers with bootstrap
intervals that resample cases. Repeats are left out of every other figure: they would count a reader's
answer to one film twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.ratings import rating
from app.stats.agreement import cohen_kappa, cohen_kappa_with_ci, weighted_kappa, weighted_kappa_with_ci

SCALE = tuple(range(1, 11))


@dataclass(frozen=True)
class ReaderRetest:
    """One reader's agreement with themselves."""

    reader: str
    pairs: int
    same_verdict: int
    kappa: float | None
    weighted: float | None


@dataclass(frozen=True)
class Retest:
    """Intra-reader agreement over every reader's repeated films."""

    pairs: int
    readers: list[ReaderRetest]
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None
    weighted: float | None
    weighted_low: float | None
    weighted_high: float | None


def retest_agreement(reads: Sequence) -> Retest | None:
    """Test-retest agreement from latest readings (with their presentation); None without repeats."""
    first = {(r.reader, r.case): r for r in reads if r.presentation == 1}
    pairs = [
        (first[(r.reader, r.case)], r) for r in reads if r.presentation == 2 and (r.reader, r.case) in first
    ]
    if not pairs:
        return None
    pairs.sort(key=lambda p: (p[0].reader, p[0].case))
    verdict_a = [a.verdict == "synthetic" for a, _ in pairs]
    verdict_b = [b.verdict == "synthetic" for _, b in pairs]
    score_a = [rating(a.verdict, a.confidence) for a, _ in pairs]
    score_b = [rating(b.verdict, b.confidence) for _, b in pairs]
    cases = [a.case for a, _ in pairs]
    per_reader = []
    for name in sorted({a.reader for a, _ in pairs}):
        mine = [i for i, (a, _) in enumerate(pairs) if a.reader == name]
        per_reader.append(
            ReaderRetest(
                reader=name,
                pairs=len(mine),
                same_verdict=sum(verdict_a[i] == verdict_b[i] for i in mine),
                kappa=cohen_kappa([verdict_a[i] for i in mine], [verdict_b[i] for i in mine]),
                weighted=weighted_kappa(
                    [score_a[i] for i in mine], [score_b[i] for i in mine], categories=SCALE
                ),
            )
        )
    kappa, k_low, k_high = cohen_kappa_with_ci(verdict_a, verdict_b, clusters=cases)
    weighted, w_low, w_high = weighted_kappa_with_ci(score_a, score_b, categories=SCALE, clusters=cases)
    return Retest(
        pairs=len(pairs),
        readers=per_reader,
        kappa=None if kappa is None else float(kappa),
        kappa_low=k_low,
        kappa_high=k_high,
        weighted=weighted,
        weighted_low=w_low,
        weighted_high=w_high,
    )
