"""Multi-reader multi-case analysis: Obuchowski & Rockette (1995) with Hillis' degrees of freedom.

Model (OR): the FOM of reader j in modality t is theta_tj = mu + tau_t + R_j + (tauR)_tj + e_tj, where
readers (R, tauR) and cases (through e) are random. The errors' covariance over cases is summarised by
Var (same reader, same modality), Cov1 (same reader, other modality), Cov2 (other reader, same
modality) and Cov3 (both other), estimated by the jackknife or DeLong (`app.stats.foms`).

Three analyses, as OR-DBM MRMC 2.5, RJafroc and MRMCaov print them:

- RRRC (readers and cases random): F = MS(T) / (MS(TR) + J max(Cov2 - Cov3, 0)) with Hillis' (2007)
  denominator degrees of freedom; one modality: SE^2 = (MS(R) + J max(Cov2, 0)) / J;
- FRRC (readers fixed): chi^2 = (T - 1) MS(T) / (Var - Cov1 + (J - 1)(Cov2 - Cov3)); one modality:
  SE^2 = (Var + (J - 1) Cov2) / J, normal;
- RRFC (cases fixed): F = MS(T) / MS(TR) on (T - 1, (T - 1)(J - 1)); one modality: SE^2 = MS(R) / J.

A realism study has one modality per generator: the test of the readers' mean AUC against 1/2 is the
single-modality analysis; with several generators the modality test compares them (Hillis et al.
2005, 2008 for the OR-DBM relation; Van Dyke et al. 1993 is the validation data set).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from app.stats.foms import covariance
from app.stats.proportions import z_value
from app.stats.ratings import RatingTable

__all__ = ["Analysis", "Components", "Difference", "GlobalTest", "Level", "MrmcResult", "analyse"]



@dataclass(frozen=True)
class GlobalTest:
    """The test of equal modalities and its p-value: F on (ndf, ddf); chi^2 on ndf where ddf is None
    (FRRC always; RRRC when the readers' modality effects do not vary, an infinite ddf)."""

    statistic: float | None
    ndf: int
    ddf: float | None
    p: float | None


@dataclass(frozen=True)
class Difference:
    """A difference of modality means with its standard error, test and interval."""

    first: str
    second: str
    estimate: float
    se: float | None  # None (and no test or interval) where the analysis leaves no variance
    df: float | None
    statistic: float | None
    p: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Level:
    """One modality's reader-averaged FOM with its interval and the test against the null value."""

    modality: str
    estimate: float
    se: float | None
    df: float | None
    low: float | None
    high: float | None
    statistic: float | None
    p: float | None


@dataclass(frozen=True)
class Analysis:
    """One of RRRC, FRRC, RRFC: global test, pairwise differences and per-modality levels."""

    kind: str
    test: GlobalTest | None
    differences: list[Difference]
    levels: list[Level]


@dataclass(frozen=True)
class Components:
    """OR variance components and error covariances (unbiased; may be negative)."""

    var_r: float | None
    var_tr: float | None
    cov1: float | None
    cov2: float | None
    cov3: float | None
    var_error: float


@dataclass(frozen=True)
class MrmcResult:
    """Everything one OR analysis gives, in the order OR-DBM MRMC prints it."""

    fom: str
    covariance: str
    null: float | None
    alpha: float
    modalities: list[str]
    readers: list[str]
    n_cases: int
    n_positive: int
    n_negative: int
    foms: list[list[float]]  # (T, J)
    means: list[float]  # (T,)
    ms_t: float | None
    ms_r: float | None
    ms_tr: float | None
    components: Components
    analyses: dict[str, Analysis] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict of every figure."""
        return asdict(self)

    def headline(self) -> tuple[str, Level] | None:
        """The first modality's level from the widest analysis that has an interval: RRRC, else FRRC."""
        for kind in ("RRRC", "FRRC"):
            analysis = self.analyses.get(kind)
            if analysis is not None:
                return kind, analysis.levels[0]
        return None


def _t_p(t: float, df: float | None) -> float:
    return float(2 * (stats.norm.sf(abs(t)) if df is None else stats.t.sf(abs(t), df)))


def _t_q(alpha: float, df: float | None) -> float:
    return z_value(1 - alpha) if df is None else float(stats.t.ppf(1 - alpha / 2, df))


def _finite_df(df: float) -> float | None:
    return None if not math.isfinite(df) else float(df)


def _level(name: str, est: float, var: float, df: float | None, null: float | None, alpha: float) -> Level:
    if var <= 0 or not math.isfinite(var):
        return Level(name, est, None, df, None, None, None, None)
    se = math.sqrt(var)
    q = _t_q(alpha, df)
    stat = None if null is None else (est - null) / se
    p = None if stat is None else _t_p(stat, df)
    return Level(name, est, se, df, est - q * se, est + q * se, stat, p)


def _differences(names, means, var: float, df: float | None, alpha: float) -> list[Difference]:
    out = []
    q = _t_q(alpha, df)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            d = float(means[a] - means[b])
            if var <= 0 or not math.isfinite(var):
                out.append(Difference(names[a], names[b], d, None, df, None, None, None, None))
                continue
            se = math.sqrt(var)
            stat = d / se
            p = _t_p(stat, df)
            out.append(Difference(names[a], names[b], d, se, df, stat, p, d - q * se, d + q * se))
    return out


def _mean_cov(
    cov: np.ndarray, t_idx: np.ndarray, r_idx: np.ndarray, same_t: bool, same_r: bool
) -> float | None:
    mask = (np.equal.outer(t_idx, t_idx) == same_t) & (np.equal.outer(r_idx, r_idx) == same_r)
    return float(cov[mask].mean()) if mask.any() else None


def analyse(
    table: RatingTable,
    *,
    fom: str = "auc",
    method: str = "auto",
    null: float | None = 0.5,
    alpha: float = 0.05,
) -> MrmcResult:
    """OR analysis of a rating table: FOMs, covariances, mean squares and the RRRC/FRRC/RRFC analyses."""
    if method == "auto":
        method = "jackknife" if table.is_factorial() else "delong"
    foms = table.foms(fom)  # (T, J) list of Fom
    n_t, n_j = len(table.modalities), len(table.readers)
    theta = np.array([[f.value for f in row] for row in foms])  # (T, J)
    cov = covariance([f for row in foms for f in row], table.n_cases, method=method)  # (TJ, TJ)
    t_idx, r_idx = np.repeat(np.arange(n_t), n_j), np.tile(np.arange(n_j), n_t)
    var = float(np.diag(cov).mean())
    cov1 = _mean_cov(cov, t_idx, r_idx, False, True)
    cov2 = _mean_cov(cov, t_idx, r_idx, True, False)
    cov3 = _mean_cov(cov, t_idx, r_idx, False, False)
    means = theta.mean(axis=1)  # (T,)
    grand = float(theta.mean())
    ms_t = n_j * float(((means - grand) ** 2).sum()) / (n_t - 1) if n_t > 1 else None
    ms_r = n_t * float(((theta.mean(axis=0) - grand) ** 2).sum()) / (n_j - 1) if n_j > 1 else None
    ms_tr = None
    if n_t > 1 and n_j > 1:
        inter = theta - means[:, None] - theta.mean(axis=0)[None, :] + grand
        ms_tr = float((inter**2).sum()) / ((n_t - 1) * (n_j - 1))
    var_tr = var_r = None
    if ms_tr is not None:
        var_tr = ms_tr - var + cov1 + cov2 - cov3  # type: ignore[operator]
        var_r = (ms_r - var_tr - var - (n_t - 1) * (cov1 - cov3) + cov2) / n_t  # type: ignore[operator]
    elif n_j > 1 and cov2 is not None:
        var_r = ms_r - var + cov2  # type: ignore[operator]

    names = table.modalities
    analyses: dict[str, Analysis] = {}
    # Per-modality quantities: each modality's own MS(R), Var and Cov2.
    own = []
    for t in range(n_t):
        block = cov[t * n_j : (t + 1) * n_j, t * n_j : (t + 1) * n_j]
        off = block[~np.eye(n_j, dtype=bool)]
        ms_r_t = float(np.var(theta[t], ddof=1)) if n_j > 1 else None
        own.append((ms_r_t, float(np.diag(block).mean()), float(off.mean()) if off.size else None))

    # RRRC
    if n_j > 1:
        levels = []
        for t, (ms_r_t, _, cov2_t) in enumerate(own):
            num = ms_r_t + n_j * max(cov2_t, 0.0)  # type: ignore[operator]
            df = _finite_df(num * num / (ms_r_t * ms_r_t / (n_j - 1))) if ms_r_t else None
            levels.append(_level(names[t], float(means[t]), num / n_j, df, null, alpha))
        test, diffs = None, []
        if n_t > 1:
            denom = ms_tr + n_j * max(cov2 - cov3, 0.0)  # type: ignore[operator]
            ddf = _finite_df(denom * denom / (ms_tr * ms_tr / ((n_t - 1) * (n_j - 1)))) if ms_tr else None
            f = ms_t / denom if denom > 0 else None  # type: ignore[operator]
            p = None if f is None else _f_p(f, n_t - 1, ddf)
            test = GlobalTest(f, n_t - 1, ddf, p)
            diffs = _differences(names, means, 2.0 * denom / n_j, ddf, alpha)
        analyses["RRRC"] = Analysis("RRRC", test, diffs, levels)

    # FRRC
    levels = []
    for t, (_, var_t, cov2_t) in enumerate(own):
        v = (var_t + (n_j - 1) * (cov2_t or 0.0)) / n_j
        levels.append(_level(names[t], float(means[t]), v, None, null, alpha))
    test, diffs = None, []
    if n_t > 1:
        denom = var - cov1 + (n_j - 1) * ((cov2 or 0.0) - (cov3 or 0.0))  # type: ignore[operator]
        chi2 = (n_t - 1) * ms_t / denom if denom > 0 else None  # type: ignore[operator]
        test = GlobalTest(chi2, n_t - 1, None, None if chi2 is None else float(stats.chi2.sf(chi2, n_t - 1)))
        diffs = _differences(names, means, 2.0 * denom / n_j, None, alpha)
    analyses["FRRC"] = Analysis("FRRC", test, diffs, levels)

    # RRFC
    if n_j > 1:
        levels = [
            _level(names[t], float(means[t]), own[t][0] / n_j, float(n_j - 1), null, alpha)  # type: ignore[operator]
            for t in range(n_t)
        ]
        test, diffs = None, []
        if n_t > 1:
            ddf = float((n_t - 1) * (n_j - 1))
            f = ms_t / ms_tr if ms_tr else None  # type: ignore[operator]
            test = GlobalTest(f, n_t - 1, ddf, None if f is None else _f_p(f, n_t - 1, ddf))
            diffs = _differences(names, means, 2.0 * ms_tr / n_j, ddf, alpha)  # type: ignore[operator]
        analyses["RRFC"] = Analysis("RRFC", test, diffs, levels)

    return MrmcResult(
        fom=fom,
        covariance=method,
        null=null,
        alpha=alpha,
        modalities=list(names),
        readers=list(table.readers),
        n_cases=table.n_cases,
        n_positive=table.n_positive,
        n_negative=table.n_cases - table.n_positive,
        foms=theta.tolist(),
        means=means.tolist(),
        ms_t=ms_t,
        ms_r=ms_r,
        ms_tr=ms_tr,
        components=Components(var_r, var_tr, cov1, cov2, cov3, var),
        analyses=analyses,
    )


def _f_p(f: float, ndf: int, ddf: float | None) -> float:
    # An infinite denominator df (no reader-by-modality spread) leaves ndf * F ~ chi^2(ndf).
    return float(stats.chi2.sf(f * ndf, ndf) if ddf is None else stats.f.sf(f, ndf, ddf))
