"""Agreement between raters: Cohen's kappa (plain and weighted), Fleiss' kappa, Krippendorff's alpha.

Krippendorff's alpha (Krippendorff 2004; "Computing Krippendorff's alpha-reliability", 2011) uses
every item rated by two or more raters, whatever the pattern of missing ratings, which is how reader
studies end: one reader stops early, another skips a day. Fleiss' kappa (1971) needs the same number of
raters on every item, so it is reported only over the items that all raters rated, with that n. The
interval of alpha is a percentile bootstrap over items (cases), the unit a study samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Agreement",
    "binary_kappas_with_ci",
    "cohen_kappa",
    "cohen_kappa_with_ci",
    "fleiss_kappa",
    "krippendorff_alpha",
    "krippendorff_with_ci",
    "weighted_kappa",
    "weighted_kappa_with_ci",
]


@dataclass(frozen=True)
class Agreement:
    """An agreement coefficient with its bootstrap interval and the items and raters it used."""

    value: float | None
    low: float | None
    high: float | None
    n_items: int
    n_raters: int


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


def weighted_kappa(
    a: Sequence[int], b: Sequence[int], *, categories: Sequence[int], weights: str = "quadratic"
) -> float | None:
    """Cohen's weighted kappa of two ordinal ratings ('linear' or 'quadratic' disagreement weights)."""
    if len(a) != len(b):
        raise ValueError(f"rater sequences differ in length: {len(a)} vs {len(b)}")
    if weights not in ("linear", "quadratic"):
        raise ValueError(f"weights must be 'linear' or 'quadratic', got {weights!r}")
    if len(a) == 0:
        return None
    index = {c: i for i, c in enumerate(categories)}
    unknown = {x for x in (*a, *b) if x not in index}
    if unknown:
        raise ValueError(f"ratings outside the categories: {sorted(unknown)}")
    k = len(categories)
    observed = np.zeros((k, k))  # (k, k) joint counts
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))  # (k, k)
    gap = np.abs(np.subtract.outer(np.arange(k), np.arange(k))) / max(k - 1, 1)
    w = gap if weights == "linear" else gap**2
    chance = float((w * expected).sum())
    if chance == 0.0:
        return None
    return 1.0 - float((w * observed).sum()) / chance


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


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """(items, k, k) coincidence contributions of each item with >= 2 ratings (zeros otherwise)."""
    m = counts.sum(axis=1)  # (items,)
    pairs = counts[:, :, None] * counts[:, None, :]  # (items, k, k): ordered value pairs
    idx = np.arange(counts.shape[1])
    pairs[:, idx, idx] -= counts  # a rating is not paired with itself
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return pairs * scale[:, None, None]


def _delta2(level: str, n_c: np.ndarray) -> np.ndarray:
    """(..., k, k) squared distances between category values 0..k-1 at the given level of measurement.

    n_c (..., k) holds the categories' totals, which the ordinal metric needs; leading axes are resamples.
    """
    k = n_c.shape[-1]
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    if level == "nominal":
        return np.broadcast_to((i != j).astype(float), (*n_c.shape[:-1], k, k))
    if level == "interval":
        return np.broadcast_to(((i - j) ** 2).astype(float), (*n_c.shape[:-1], k, k))
    if level == "ordinal":
        zero = np.zeros((*n_c.shape[:-1], 1))
        cum = np.concatenate([zero, np.cumsum(n_c, axis=-1)], axis=-1)  # (..., k + 1)
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        return (cum[..., hi + 1] - cum[..., lo] - (n_c[..., i] + n_c[..., j]) / 2.0) ** 2
    raise ValueError(f"level must be nominal, ordinal or interval, got {level!r}")


def _alphas(coincidence: np.ndarray, level: str) -> np.ndarray:
    """Alpha of (..., k, k) coincidence matrices; NaN where undefined (fewer than 2 values, no spread)."""
    n_c = coincidence.sum(axis=-1)  # (..., k)
    n = n_c.sum(axis=-1)  # (...,)
    d2 = _delta2(level, n_c)
    d_o = (coincidence * d2).sum(axis=(-2, -1))
    d_e = (n_c[..., :, None] * n_c[..., None, :] * d2).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (d_o / n) / (d_e / (n * (n - 1.0)))
    return np.where((n >= 2) & (d_e > 0), alpha, np.nan)


def _alpha_from(coincidence: np.ndarray, level: str) -> float | None:
    alpha = float(_alphas(coincidence, level))
    return None if np.isnan(alpha) else alpha


def _count_matrix(ratings: np.ndarray) -> np.ndarray:
    """(items, k) counts of each category 0..k-1 from (raters, items) codes, -1 = missing."""
    k = int(ratings.max()) + 1 if ratings.size and ratings.max() >= 0 else 0
    counts = np.zeros((ratings.shape[1], k))
    for code in range(k):
        counts[:, code] = (ratings == code).sum(axis=0)
    return counts


def krippendorff_alpha(ratings: np.ndarray, *, level: str = "nominal") -> float | None:
    """Krippendorff's alpha of (raters, items) integer codes 0..k-1 (in value order), -1 = missing."""
    codes = np.asarray(ratings, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"ratings must be 2-D (raters, items), got shape {codes.shape}")
    counts = _count_matrix(codes)
    if counts.shape[1] == 0:
        return None
    return _alpha_from(_unit_coincidences(counts).sum(axis=0), level)


def krippendorff_with_ci(
    ratings: np.ndarray, *, level: str = "nominal", resamples: int = 1000, seed: int = 0, confidence=0.95
) -> Agreement:
    """Krippendorff's alpha with a percentile bootstrap interval over items (seeded, so reproducible)."""
    codes = np.asarray(ratings, dtype=np.int64)
    counts = _count_matrix(codes)
    used = counts.sum(axis=1) >= 2 if counts.size else np.zeros(codes.shape[1], dtype=bool)
    raters = int(((codes[:, used] >= 0).any(axis=1)).sum()) if used.any() else 0
    if counts.shape[1] == 0 or not used.any():
        return Agreement(None, None, None, int(used.sum()), raters)
    units = _unit_coincidences(counts[used])  # (items used, k, k)
    value = _alpha_from(units.sum(axis=0), level)
    rng = np.random.default_rng(seed)
    n = units.shape[0]
    # Each resample draws items with replacement; multiplicities weight the items' contributions.
    draws = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)  # (resamples, n)
    boot = _alphas(np.tensordot(draws, units, axes=1), level)  # (resamples,), all at once
    finite = boot[np.isfinite(boot)]
    low = high = None
    if value is not None and finite.size >= resamples // 2:
        tail = (1.0 - confidence) / 2.0
        low, high = (float(q) for q in np.quantile(finite, [tail, 1.0 - tail]))
    return Agreement(value, low, high, n, raters)


def cohen_kappa_with_ci(
    a: Sequence[bool],
    b: Sequence[bool],
    *,
    clusters: Sequence[Hashable],
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """Cohen's kappa of two binary sequences with a percentile bootstrap interval that resamples clusters.

    Readings of one case by several readers are not independent; resampling whole cases (clusters)
    keeps that dependence in the interval.
    """
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    (result,) = binary_kappas_with_ci(
        x[:, None], y[:, None], clusters=clusters, resamples=resamples, seed=seed, confidence=confidence
    )
    return result


def binary_kappas_with_ci(
    a: np.ndarray,
    b: np.ndarray,
    *,
    clusters: Sequence[Hashable],
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[tuple[float | None, float | None, float | None]]:
    """Cohen's kappa of each column of two (n, F) boolean arrays, with cluster-bootstrap intervals.

    The columns share one set of resamples (the same cases drawn for every finding), so F kappas cost
    about what one does.
    """
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape or x.ndim != 2 or x.shape[0] != len(clusters):
        raise ValueError("a and b must be (n, F) with one cluster per row")
    if x.shape[0] == 0:
        return [(None, None, None)] * x.shape[1]
    keys = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    group = np.array([keys[c] for c in clusters])  # (n,) cluster index of each pair
    # Per cluster and column: counts of the four (a, b) cells; a resample is a weighted sum of clusters.
    cells = np.zeros((len(keys), x.shape[1], 4))  # (C, F, 4): (0,0), (0,1), (1,0), (1,1)
    np.add.at(cells, (group[:, None], np.arange(x.shape[1])[None, :], 2 * x + y), 1)
    values = _kappas(cells.sum(axis=0)[None])[0]  # (F,)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(keys), np.full(len(keys), 1.0 / len(keys)), size=resamples)  # (R, C)
    boot = _kappas(np.tensordot(draws, cells, axes=1))  # (R, F)
    tail = (1.0 - confidence) / 2.0
    out = []
    for f, value in enumerate(values):
        if np.isnan(value):
            out.append((None, None, None))
            continue
        ok = boot[np.isfinite(boot[:, f]), f]
        if ok.size < resamples // 2:
            out.append((float(value), None, None))
            continue
        low, high = np.quantile(ok, [tail, 1.0 - tail])
        out.append((float(value), float(low), float(high)))
    return out


def _kappas(tables: np.ndarray) -> np.ndarray:
    """Kappa of (..., 4) cell counts (0,0), (0,1), (1,0), (1,1); NaN where chance agreement is total."""
    n = tables.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_a = (tables[..., 2] + tables[..., 3]) / n
        p_b = (tables[..., 1] + tables[..., 3]) / n
        chance = p_a * p_b + (1 - p_a) * (1 - p_b)
        kappa = ((tables[..., 0] + tables[..., 3]) / n - chance) / (1.0 - chance)
    return np.where((n > 0) & (chance < 1.0), kappa, np.nan)


def weighted_kappa_with_ci(
    a: Sequence[int],
    b: Sequence[int],
    *,
    categories: Sequence[int],
    clusters: Sequence[Hashable],
    weights: str = "quadratic",
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float | None, float | None, float | None]:
    """Weighted kappa with a percentile bootstrap interval that resamples whole clusters (cases)."""
    value = weighted_kappa(a, b, categories=categories, weights=weights)
    if value is None:
        return None, None, None
    x, y = np.asarray(a), np.asarray(b)
    keys = {c: i for i, c in enumerate(dict.fromkeys(clusters))}
    members = [[] for _ in keys]  # pair indices per cluster
    for i, c in enumerate(clusters):
        members[keys[c]].append(i)
    rng = np.random.default_rng(seed)
    boot = []
    for draw in rng.integers(0, len(members), size=(resamples, len(members))):
        idx = [i for c in draw for i in members[c]]
        k = weighted_kappa(x[idx].tolist(), y[idx].tolist(), categories=categories, weights=weights)
        if k is not None:
            boot.append(k)
    if len(boot) < resamples // 2:
        return value, None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return value, float(low), float(high)
