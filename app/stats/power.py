"""Power and sample size of MRMC studies by the Obuchowski-Rockette method (Hillis, Obuchowski & Berbaum,
"Power estimation for multireader ROC methods", Acad Radiol 2011; Hillis & Schartz 2018).

A pilot study's OR variance components, estimated on K* cases, predict a pivotal study of J readers and
K cases: the error (co)variances shrink as K*/K, reader variances stay. Under the alternative the test
statistic follows a non-central F with

    den = reader term + (K*/K) * (error term)      (the expected denominator of the test)
    ncp = J * sum of squared effects / den,        ddf from Hillis' formula on the expected mean squares.

Two questions are planned here:

- `single`: is the readers' mean AUC above 1/2? (a realism study: can readers tell synthetic from real?)
  reader term = Var(R); error term = Var + (J - 1) max(Cov2, 0); sum of squares = d^2.
- `difference`: do two modalities (generators) differ by d? As RJafroc's SsPowerGivenJK:
  reader term = Var(T x R); error term = Var - Cov1 + (J - 1) max(Cov2 - Cov3, 0); sum of squares d^2 / 2.

Both scale the case variance with the total number of cases, so the pivotal study should keep the
pilot's ratio of positives to negatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

__all__ = ["PilotComponents", "Power", "cases_for_power", "power"]


@dataclass(frozen=True)
class PilotComponents:
    """OR components of a pilot study and its number of cases K*."""

    cases: int  # K*
    var_r: float = 0.0  # Var(R), for `single`
    var_tr: float = 0.0  # Var(T x R), for `difference`
    var: float = 0.0  # error variance
    cov1: float = 0.0
    cov2: float = 0.0
    cov3: float = 0.0


@dataclass(frozen=True)
class Power:
    """Predicted power of one design, with the quantities it came from."""

    readers: int
    cases: int
    effect: float
    power: float
    ncp: float
    ddf: float | None  # None: fixed readers, chi-square


def power(
    pilot: PilotComponents,
    *,
    readers: int,
    cases: int,
    effect: float,
    question: str = "single",
    analysis: str = "RRRC",
    alpha: float = 0.05,
) -> Power:
    """Predicted power of a study of `readers` x `cases` to detect `effect` (an AUC difference)."""
    if readers < 1 or cases < 1:
        raise ValueError("a study needs at least one reader and one case")
    scale = pilot.cases / cases
    # raw: the between-reader covariance the test's denominator adds J times (the analysis clamps it at 0
    # in RRRC, not in FRRC); error: the case part of the readers' expected mean square, unclamped. Negative
    # reader variance estimates count as 0.
    if question == "single":
        reader_term, squares = max(pilot.var_r, 0.0), effect * effect
        raw = pilot.cov2
        error = pilot.var - raw
    elif question == "difference":
        reader_term, squares = max(pilot.var_tr, 0.0), effect * effect / 2.0
        raw = pilot.cov2 - pilot.cov3
        error = pilot.var - pilot.cov1 - raw
    else:
        raise ValueError(f"question must be 'single' or 'difference', got {question!r}")
    if analysis == "RRRC":
        ms = reader_term + scale * error  # expected mean square of readers (x modality)
        den = ms + readers * scale * max(raw, 0.0)
        ddf = den * den / (ms * ms / (readers - 1)) if readers > 1 and ms > 0 else None
    elif analysis == "FRRC":
        den, ddf = scale * (error + readers * raw), None
    elif analysis == "RRFC":
        den = reader_term + scale * error
        ddf = float(readers - 1) if readers > 1 else None
    else:
        raise ValueError(f"analysis must be RRRC, FRRC or RRFC, got {analysis!r}")
    if not den > 0:
        raise ValueError("the pilot's variance components leave no variance to test against")
    ncp = readers * squares / den
    if ddf is not None and not math.isfinite(ddf):
        ddf = None
    # scipy's non-central laws misbehave at ncp = 0, where the central ones are exact.
    if ddf is None:
        crit = stats.chi2.ppf(1 - alpha, 1)
        p = float(stats.ncx2.sf(crit, 1, ncp) if ncp > 0 else stats.chi2.sf(crit, 1))
    else:
        crit = stats.f.ppf(1 - alpha, 1, ddf)
        p = float(stats.ncf.sf(crit, 1, ddf, ncp) if ncp > 0 else stats.f.sf(crit, 1, ddf))
    return Power(readers, cases, effect, p, ncp, ddf)


def cases_for_power(
    pilot: PilotComponents,
    *,
    readers: int,
    effect: float,
    target: float = 0.8,
    question: str = "single",
    analysis: str = "RRRC",
    alpha: float = 0.05,
    max_cases: int = 5000,
) -> Power | None:
    """The fewest cases that reach `target` power with `readers` readers; None if not within max_cases."""

    def at(k: int) -> Power:
        return power(
            pilot, readers=readers, cases=k, effect=effect, question=question, analysis=analysis, alpha=alpha
        )

    if at(max_cases).power < target:
        return None
    lo, hi = 1, max_cases  # power grows with K: bisect for the first K at or above the target
    while lo < hi:
        mid = (lo + hi) // 2
        if at(mid).power >= target:
            hi = mid
        else:
            lo = mid + 1
    return at(lo)
