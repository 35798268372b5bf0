"""Memorisation audit: is a generate a near-copy of a training film? (The paper's motivation is patient
confidentiality: a generator that reproduces training patients leaks them.)

For each generate, its nearest training film in classifier features (cosine distance) and the SSIM
(Wang et al. 2004) with that film at low resolution. What counts as "near" is calibrated, not guessed:
real held-out films are exactly as close to the training set as a generalising generator's films
should be, so the thresholds are quantiles of held-out-to-training nearest-neighbour distance and SSIM.
A generate is flagged when both measures put it closer than all but `quantile` of the real pairs: near
in features alone only says "similar anatomy", and smooth films can share a high SSIM; a copy is both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # SSIM's stabilising constants for 8-bit images


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest(train: np.ndarray, query: np.ndarray, *, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine distance) of each query's nearest training feature vector."""
    t, q = _unit(train), _unit(query)
    idx, dist = np.empty(len(q), dtype=np.int64), np.empty(len(q))
    for start in range(0, len(q), chunk):
        sim = q[start : start + chunk] @ t.T  # (chunk, N_train)
        best = sim.argmax(axis=1)
        idx[start : start + chunk] = best
        dist[start : start + chunk] = 1.0 - sim[np.arange(len(best)), best]
    return idx, dist


def ssim(a: np.ndarray, b: np.ndarray, *, sigma: float = 1.5) -> float:
    """Mean SSIM of two equally sized 8-bit grey images (Gaussian window)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mx, my = gaussian_filter(x, sigma), gaussian_filter(y, sigma)
    vx = gaussian_filter(x * x, sigma) - mx * mx
    vy = gaussian_filter(y * y, sigma) - my * my
    cxy = gaussian_filter(x * y, sigma) - mx * my
    s = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
    return float(s.mean())


@dataclass(frozen=True)
class Audit:
    """Per generate: nearest training film, its distance and SSIM, and the flag; with the thresholds."""

    nearest_index: np.ndarray  # (N_gen,)
    distance: np.ndarray  # (N_gen,) cosine distance in classifier features
    ssim: np.ndarray  # (N_gen,) SSIM with that training film at low resolution
    flagged: np.ndarray  # (N_gen,) bool
    distance_threshold: float
    ssim_threshold: float


def _side(films: np.ndarray) -> None:
    if films.ndim != 3:
        raise ValueError("films must be (N, s, s) uint8 arrays at one low resolution")


def audit(
    train_features: np.ndarray,
    train_films: np.ndarray,
    holdout_features: np.ndarray,
    holdout_films: np.ndarray,
    generated_features: np.ndarray,
    generated_films: np.ndarray,
    *,
    quantile: float = 0.01,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> Audit:
    """Flag generates nearer to a training film, in features and in SSIM, than all but `quantile` of
    held-out real films are to theirs.

    `reference` (features, films) is what generates are searched against when it is more than the
    calibration's training films: when the held-out films were split off the generator's own training
    set, generates must still be checked against all of it (indices then refer to `reference`).
    """
    ref_features, ref_films = reference if reference is not None else (train_features, train_films)
    for films in (train_films, holdout_films, generated_films, ref_films):
        _side(films)
    h_idx, h_dist = nearest(train_features, holdout_features)
    h_ssim = np.array([ssim(f, train_films[i]) for f, i in zip(holdout_films, h_idx, strict=True)])
    dist_thr = float(np.quantile(h_dist, quantile))
    ssim_thr = float(np.quantile(h_ssim, 1 - quantile))
    g_idx, g_dist = nearest(ref_features, generated_features)
    g_ssim = np.array([ssim(f, ref_films[i]) for f, i in zip(generated_films, g_idx, strict=True)])
    flagged = (g_dist < dist_thr) & (g_ssim > ssim_thr)
    return Audit(g_idx, g_dist, g_ssim, flagged, dist_thr, ssim_thr)
