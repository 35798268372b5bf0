"""Figures of merit per reader x modality, and the covariance of their errors over cases.

A figure of merit (FOM) here is a mean of per-case components within one or two strata of cases:

- the AUC is the mean of V10 over the positives and equally the mean of V01 over the negatives
  (DeLong et al. 1988; see `app.stats.roc`); on binary calls it is the balanced accuracy
  (sensitivity + specificity) / 2, whose chance value is 1/2 at any ratio and any reader bias;
- a proportion (accuracy over all cases, the fooling rate over the positives) is the mean of 0/1 hits.

Writing every FOM this way gives both covariance estimators the Obuchowski-Rockette analysis needs
(`app.stats.mrmc`) in one place:

- jackknife (the OR-DBM MRMC default): leaving out case k changes a FOM only through the stratum that
  holds k, theta(-k) = (n_s theta - psi_k) / (n_s - 1); Cov = (K - 1) / K * sum_k of centred products,
  over all K cases. For a FOM over part of the cases (the fooling rate, over the n synthetic ones) this
  is n (K - 1) / (K (n - 1)) times the binomial variance, about 5 % more at 10 of 20 cases, as in
  RJafroc and OR-DBM MRMC;
- DeLong: per stratum, the centred cross-products of components over the cases both FOMs share,
  divided by (shared - 1), times shared / (n_a n_b). With identical case sets this is DeLong's S10/m +
  S01/n; with partly shared cases (a reader who stopped early; generators that share only the real
  cases) it still uses exactly the cases in common.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.stats.roc import components

__all__ = ["Fom", "auc_fom", "covariance", "proportion_fom"]


@dataclass(frozen=True)
class Fom:
    """A FOM's value and its strata: per stratum, the case indices (n_s,) and components (n_s,)."""

    value: float
    strata: tuple[tuple[np.ndarray, np.ndarray], ...]


def auc_fom(cases: np.ndarray, truth: np.ndarray, scores: np.ndarray) -> Fom:
    """The trapezoidal AUC of `scores` as a FOM over integer case indices (ValueError if a class < 2)."""
    y = np.asarray(truth).astype(bool)
    if y.sum() < 2 or (~y).sum() < 2:
        raise ValueError("an AUC needs at least two positive and two negative cases per reader")
    value, v10, v01 = components(y, scores)  # type: ignore[misc]
    return Fom(value, ((np.asarray(cases)[y], v10), (np.asarray(cases)[~y], v01)))


def proportion_fom(cases: np.ndarray, hits: np.ndarray) -> Fom:
    """The share of hits (0/1) over the given cases as a FOM (ValueError with fewer than two cases)."""
    h = np.asarray(hits, dtype=np.float64)
    if h.size < 2:
        raise ValueError("a proportion needs at least two cases per reader")
    return Fom(float(h.mean()), ((np.asarray(cases), h),))


def _dense(foms: list[Fom], n_cases: int) -> tuple[np.ndarray, np.ndarray]:
    """Components on a (strata, F, K) grid with NaN where a case is outside a FOM's stratum; sizes (S, F)."""
    depth = max(len(f.strata) for f in foms)
    psi = np.full((depth, len(foms), n_cases), np.nan)
    sizes = np.zeros((depth, len(foms)))
    for i, fom in enumerate(foms):
        for s, (cases, values) in enumerate(fom.strata):
            psi[s, i, cases] = values
            sizes[s, i] = len(cases)
    return psi, sizes


def _delong(psi: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    n_foms = psi.shape[1]
    cov = np.zeros((n_foms, n_foms))
    for s in range(psi.shape[0]):
        present = np.isfinite(psi[s])  # (F, K)
        for a in range(n_foms):
            for b in range(a, n_foms):
                shared = present[a] & present[b]
                n = int(shared.sum())
                if n < 2:
                    continue
                x, y = psi[s, a, shared], psi[s, b, shared]
                c = float(((x - x.mean()) * (y - y.mean())).sum()) / (n - 1) * n / (sizes[s, a] * sizes[s, b])
                cov[a, b] += c
                if a != b:
                    cov[b, a] += c
    return cov


def _jackknife(foms: list[Fom], psi: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    values = np.array([f.value for f in foms])  # (F,)
    left_out = np.repeat(values[:, None], psi.shape[2], axis=1)  # (F, K): theta with case k left out
    for s in range(psi.shape[0]):
        n_s = sizes[s][:, None]  # (F, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            loo = (n_s * values[:, None] - psi[s]) / (n_s - 1.0)
        left_out = np.where(np.isfinite(psi[s]), loo, left_out)
    k = psi.shape[2]
    centred = left_out - left_out.mean(axis=1, keepdims=True)
    return (k - 1.0) / k * centred @ centred.T


def covariance(foms: list[Fom], n_cases: int, *, method: str) -> np.ndarray:
    """(F, F) covariance of the FOMs' errors over cases 0..n_cases-1, by 'jackknife' or 'delong'."""
    psi, sizes = _dense(foms, n_cases)
    if method == "delong":
        return _delong(psi, sizes)
    if method == "jackknife":
        return _jackknife(foms, psi, sizes)
    raise ValueError(f"covariance method must be 'jackknife' or 'delong', got {method!r}")
