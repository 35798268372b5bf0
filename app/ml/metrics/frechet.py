"""The Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, as FID), a
real-versus-real baseline, and FID∞ (Chong & Forsyth 2020).

d² = |mu1 - mu2|² + tr(S1 + S2 - 2 (S1 S2)^½). The matrix square root comes from scipy's sqrtm; when the
product is near-singular (fewer images than feature dimensions) a small multiple of the identity is
added to both covariances first, as the reference implementations do. FID is biased upwards for small n:
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(a.sigma @ b.sigma)
    if caught or not np.isfinite(covmean).all():  # near-singular: regularise both covariances
        offset = np.eye(a.sigma.shape[0]) * EPS
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((a.sigma + offset) @ (b.sigma + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"imaginary component {np.max(np.abs(covmean.imag)):.3g} in the matrix square root"
            )
        covmean = covmean.real
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def real_vs_real(features: np.ndarray, *, seed: int = 0) -> float:
    """The distance between two disjoint random halves of one real set: the floor any generator faces."""
    order = np.random.default_rng(seed).permutation(len(features))
    half = len(features) // 2
    return frechet_distance(
        FeatureStats.of(features[order[:half]]), FeatureStats.of(features[order[half : 2 * half]])
    )


@dataclass(frozen=True)
class Extrapolated:
    """FID∞ with the (n, FID_n) points it was fitted on."""

    value: float
    points: tuple[tuple[int, float], ...]


def fid_infinity(
    reference: FeatureStats, generated: np.ndarray, *, sizes: Sequence[int] | None = None, seed: int = 0
) -> Extrapolated:
    """Fit FID_n = FID∞ + k / n on random subsets of `generated` against `reference`; return FID∞."""
    n = len(generated)
    sizes = sorted(sizes or [max(2, int(n * f)) for f in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)])
    rng = np.random.default_rng(seed)
    points = []
    for m in sizes:
        subset = generated[rng.choice(n, size=m, replace=False)]
        points.append((m, frechet_distance(reference, FeatureStats.of(subset))))
    x = np.array([1.0 / m for m, _ in points])
    y = np.array([v for _, v in points])
    slope, intercept = np.polyfit(x, y, 1)
    return Extrapolated(float(intercept), tuple(points))
