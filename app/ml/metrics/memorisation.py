"""Memorisation audit: is a generate a near-copy of a training film? (The paper's motivation is patient
confidentiality: a generator that reproduces training patients leaks them.)

For each generate, its nearest training film in classifier features (cosine distance) and the SSIM
(Wang et al. 2004) with that film at low resolution. What counts as "near" is calibrated, not guessed:
real held-out films are exactly as close to the training set as a generalising generator's films
should be, so the thresholds are quantiles of held-out-to-training nearest-neighbour distance and SSIM.
A generate is flagged when both measures put it closer than all but `quantile` of the real pairs: near
in features alone only says "similar anatomy", and smooth films can share a high SSIM; a copy is both.

The search is exact and covers every training film: `NearestSearch` takes the training features a block
of rows at a time and keeps each query's best so far, so memory is the queries plus one block whatever
the training set's size (a copy of the one film left out of a capped search is the copy that leaks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # SSIM's stabilising constants for 8-bit images
QUERY_TILE = 1024  # queries per matmul: a (1024, block) float32 similarity tile, 16 MiB at 4,096 rows


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, float32: the search is a matmul, and float32 halves its memory and time
    (cosine distances keep about 1e-7 absolute precision, far below any calibrated threshold)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class NearestSearch:
    """Each query's nearest training row by cosine similarity, over training rows given a block at a time.

    Exact: every row offered is compared with every query. Ties keep the earliest row, as one argmax over
    the whole matrix would.
    """

    def __init__(self, query: np.ndarray) -> None:
        self.query = _unit(query)  # (Q, D)
        self.index = np.full(len(self.query), -1, dtype=np.int64)  # (Q,) best training row so far
        self.similarity = np.full(len(self.query), -np.inf, dtype=np.float32)  # (Q,) its cosine similarity
        self.searched = 0  # training rows compared so far

    def update(self, train: np.ndarray, *, offset: int, keep: np.ndarray | None = None) -> None:
        """Compare the queries with training rows offset .. offset + len(train) - 1, (C, D); `keep` (C,)
        bool leaves out the rows that must not be searched (a query's own patient's films)."""
        rows = np.arange(offset, offset + len(train))
        if keep is not None:
            train, rows = train[keep], rows[keep]
        if len(rows) == 0 or len(self.query) == 0:
            return
        t = _unit(train)  # (C, D)
        for start in range(0, len(self.query), QUERY_TILE):
            stop = start + QUERY_TILE
            sim = self.query[start:stop] @ t.T  # (tile, C)
            best = sim.argmax(axis=1)  # (tile,)
            value = sim[np.arange(len(best)), best]
            better = value > self.similarity[start:stop]  # strict: an earlier row wins a tie
            self.similarity[start:stop][better] = value[better]
            self.index[start:stop][better] = rows[best[better]]
        self.searched += len(rows)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(index, cosine distance) of each query's nearest training row; float64 distances, >= 0."""
        if len(self.query) and self.searched == 0:
            raise ValueError("no training rows were searched")
        return self.index.copy(), np.clip(1.0 - self.similarity.astype(np.float64), 0.0, 2.0)


def nearest(train: np.ndarray, query: np.ndarray, *, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine distance) of each query's nearest training feature vector, `chunk` rows at a time."""
    search = NearestSearch(query)
    for start in range(0, len(train), chunk):
        search.update(train[start : start + chunk], offset=start)
    return search.result()


def ssim(a: np.ndarray, b: np.ndarray, *, sigma: float = 1.5) -> float:
    """Mean SSIM of two equally sized 8-bit grey images (Gaussian window)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mx, my = gaussian_filter(x, sigma), gaussian_filter(y, sigma)
    vx = gaussian_filter(x * x, sigma) - mx * mx
    vy = gaussian_filter(y * y, sigma) - my * my
    cxy = gaussian_filter(x * y, sigma) - mx * my
    s = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
    return float(s.mean())


def pair_ssim(films: np.ndarray, partners: np.ndarray) -> np.ndarray:
    """(N,) SSIM of each (s, s) film with its partner; both (N, s, s) uint8."""
    _side(films)
    _side(partners)
    return np.array([ssim(f, p) for f, p in zip(films, partners, strict=True)], dtype=np.float64)


@dataclass(frozen=True)
class Thresholds:
    """How near a generate must be, in features and in SSIM, to be flagged."""

    distance: float  # cosine distance below which all but `quantile` of held-out films never come
    ssim: float  # SSIM above which all but `quantile` of held-out films never come

    @classmethod
    def calibrate(cls, distance: np.ndarray, ssim_: np.ndarray, *, quantile: float) -> Thresholds:
        """From the held-out films' (N,) nearest-neighbour distances and SSIMs, searched among the same
        training films as the generates: a larger search set brings every nearest neighbour closer."""
        if len(distance) == 0:
            raise ValueError("no held-out films to calibrate on")
        return cls(float(np.quantile(distance, quantile)), float(np.quantile(ssim_, 1 - quantile)))

    def flags(self, distance: np.ndarray, ssim_: np.ndarray) -> np.ndarray:
        """(N,) bool: nearer than the thresholds in both measures."""
        return (np.asarray(distance) < self.distance) & (np.asarray(ssim_) > self.ssim)


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
    held-out real films are to theirs. Everything in memory: for sets of any size, the `memorisation` job
    streams the training features through `NearestSearch` and decodes only the neighbours it needs.

    `reference` (features, films) is what generates are searched against when it is more than the
    calibration's training films: when the held-out films were split off the generator's own training
    set, generates must still be checked against all of it (indices then refer to `reference`).
    """
    ref_features, ref_films = reference if reference is not None else (train_features, train_films)
    for films in (train_films, holdout_films, generated_films, ref_films):
        _side(films)
    h_idx, h_dist = nearest(train_features, holdout_features)
    limits = Thresholds.calibrate(h_dist, pair_ssim(holdout_films, train_films[h_idx]), quantile=quantile)
    g_idx, g_dist = nearest(ref_features, generated_features)
    g_ssim = pair_ssim(generated_films, ref_films[g_idx])
    return Audit(g_idx, g_dist, g_ssim, limits.flags(g_dist, g_ssim), limits.distance, limits.ssim)
