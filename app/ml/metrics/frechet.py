"""The Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, as FID), a
real-versus-real baseline, and FID∞ (Chong & Forsyth 2020).

d² = |mu1 - mu2|² + tr S1 + tr S2 - 2 tr((S1 S2)^½). From statistics alone the trace comes from scipy's
sqrtm, regularised only when the root is not finite (as pytorch-fid does). From features it is exact even
with fewer images than dimensions (Inception's 2048, the usual case): both covariances are then singular,
and the non-zero eigenvalues of S1 S2 are the squared singular values of X1 X2ᵀ for the centred, scaled
features X (N, D), so the trace is that (N1, N2) matrix's nuclear norm. FID is biased upwards for small n:
FID∞ fits FID against 1/n over several subset sizes and reads off the intercept at 1/n = 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import linalg

EPS = 1e-6


@dataclass(frozen=True)
class FeatureStats:
    """Mean (D,) and covariance (D, D) of n feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def of(cls, features: np.ndarray) -> FeatureStats:
        """Statistics of (N, D) features (covariance with N - 1 in the denominator)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError("need at least two feature vectors")
        return cls(x.mean(axis=0), np.cov(x, rowvar=False), len(x))


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """d² between the Gaussians of `a` and `b` (>= 0 up to rounding)."""
    diff = a.mu - b.mu
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # judged by the result below instead
        covmean = linalg.sqrtm(a.sigma @ b.sigma)
        if not np.isfinite(covmean).all():  # singular product: regularise both covariances
            offset = np.eye(a.sigma.shape[0]) * EPS
            covmean = linalg.sqrtm((a.sigma + offset) @ (b.sigma + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"imaginary component {np.max(np.abs(covmean.imag)):.3g} in the matrix square root"
            )
        covmean = covmean.real
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """d² between the Gaussians fitted to (N1, D) and (N2, D) features, exact also when N < D."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least two feature vectors on each side")
    if min(len(a), len(b)) > a.shape[1]:  # full-rank covariances
        return frechet_distance(FeatureStats.of(a), FeatureStats.of(b))
    xa = (a - a.mean(axis=0)) / np.sqrt(len(a) - 1)  # (N1, D): S1 = xaᵀ xa
    xb = (b - b.mean(axis=0)) / np.sqrt(len(b) - 1)  # (N2, D)
    diff = a.mean(axis=0) - b.mean(axis=0)
    trace_sqrt = np.linalg.svd(xa @ xb.T, compute_uv=False).sum()  # nuclear norm of (N1, N2)
    return max(float(diff @ diff + (xa * xa).sum() + (xb * xb).sum() - 2 * trace_sqrt), 0.0)


def real_vs_real(features: np.ndarray, *, seed: int = 0) -> float:
    """The distance between two disjoint random halves of one real set: the floor any generator faces."""
    order = np.random.default_rng(seed).permutation(len(features))
    half = len(features) // 2
    return fid(features[order[:half]], features[order[half : 2 * half]])


@dataclass(frozen=True)
class Extrapolated:
    """FID∞ with the (n, FID_n) points it was fitted on."""

    value: float
    points: tuple[tuple[int, float], ...]
    slope: float = 0.0  # k of FID_n = FID∞ + k / n


def fid_infinity(
    reference: np.ndarray, generated: np.ndarray, *, sizes: Sequence[int] | None = None, seed: int = 0
) -> Extrapolated:
    """Fit FID_n = FID∞ + k / n on random subsets of `generated` against all of `reference`; return FID∞."""
    n = len(generated)
    sizes = sorted(sizes or [max(2, int(n * f)) for f in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)])
    rng = np.random.default_rng(seed)
    points = [(m, fid(reference, generated[rng.choice(n, size=m, replace=False)])) for m in sizes]
    slope, intercept = np.polyfit([1.0 / m for m, _ in points], [v for _, v in points], 1)
    return Extrapolated(float(intercept), tuple(points), float(slope))
