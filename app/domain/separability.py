"""Content separability: how well a simple classifier on image statistics tells a study's synthetic
images from its real ones. It informs and never blocks: intensity, noise and spectrum are how the images
look, which is what the readers are there to judge, so a high AUC here is a finding to set beside the
readers' AUC (machine against human), not a leak.

The classifier is an L2-penalised logistic regression on pixel statistics, cross-validated over stratified
folds. Its out-of-fold AUC comes with
- a permutation p-value: the same cross-validation on shuffled labels, `permutations` times. The
  Hanley–McNeil interval treats the out-of-fold scores as independent, which they are not (each fold's
  model saw the others), so a gate on it blocked 9 % of null studies at 11 + 11 cases against a nominal
  2.5 %; the permutation distribution has the cross-validation's own spread.
- a bootstrap interval: cases resampled within each group and the whole cross-validation re-run, with a
  case's copies kept in one fold so that no copy is scored by a model trained on another.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from app.stats.roc import auc as auc_from_scores

MAX_PER_GROUP = 200  # features on a seeded sample: a big study's cases would take minutes to read
MIN_PER_GROUP = 5
PERMUTATIONS = 199  # p-values in steps of 1/200
BOOTSTRAPS = 200
SPECTRUM_SIDE = 256  # the noise spectrum is measured on a central crop of this side

FEATURES = (
    ("mean", "mean intensity"),
    ("std", "intensity spread"),
    ("skew", "histogram skewness"),
    ("kurtosis", "histogram kurtosis"),
    ("clipped", "share of black or white pixels"),
    ("noise", "high-pass noise level"),
    ("band_low", "spectrum power, low band"),
    ("band_mid", "spectrum power, middle band"),
    ("band_high", "spectrum power, high band"),
)


def image_features(png: bytes) -> np.ndarray:
    """The pixel statistics (len(FEATURES),) of one rendered PNG."""
    with Image.open(io.BytesIO(png)) as im:
        grey = np.asarray(im.convert("L"), dtype=np.float64) / 255.0  # (H, W)
    mean, std = grey.mean(), grey.std()
    z = (grey - mean) / std if std > 0 else np.zeros_like(grey)
    crop = _central(grey, SPECTRUM_SIDE)  # noise and spectrum on a bounded crop: cost independent of size
    # Noise: what a 3×3 mean filter removes; a generator's texture and a detector's noise differ here.
    padded = np.pad(crop, 1, mode="edge")
    local = sum(padded[i : i + crop.shape[0], j : j + crop.shape[1]] for i in range(3) for j in range(3)) / 9
    return np.array(
        [
            mean,
            std,
            float(np.mean(z**3)),
            float(np.mean(z**4)),
            float(np.mean((grey <= 0.0) | (grey >= 1.0))),
            float(np.std(crop - local)),
            *_spectrum_bands(crop),
        ]
    )


def _central(grey: np.ndarray, side: int) -> np.ndarray:
    """The central (s, s) crop of (H, W), s = min(side, H, W)."""
    h, w = grey.shape
    side = min(side, h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return grey[top : top + side, left : left + side]


def _spectrum_bands(crop: np.ndarray) -> tuple[float, float, float]:
    """Log share of spectral power in radial bands 1/16-1/8, 1/8-1/4 and 1/4-1/2 cycles per pixel."""
    side = crop.shape[0]
    window = np.outer(np.hanning(side), np.hanning(side))  # against the edge's cross in the spectrum
    power = np.abs(np.fft.fft2((crop - crop.mean()) * window)) ** 2  # (side, side)
    f = np.fft.fftfreq(side)
    radius = np.hypot(f[:, None], f[None, :])
    total = power.sum() + 1e-12
    edges = ((1 / 16, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 0.75))  # 0.75 keeps the corners (radius up to 0.71)
    return tuple(
        float(np.log(power[(radius >= lo) & (radius < hi)].sum() / total + 1e-12)) for lo, hi in edges
    )


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights (D + 1,) of an L2-penalised logistic regression (Newton); x (N, D), y (N,) in {0, 1}."""
    design = np.hstack([np.ones((len(x), 1)), x])  # (N, D + 1), column 0 the unpenalised intercept
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ (p - y) + penalty @ w
        hess = (design * (p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def cross_validated_scores(
    x: np.ndarray, y: np.ndarray, *, folds: int, seed: int, groups: np.ndarray | None = None
) -> np.ndarray:
    """Out-of-fold logits (N,) of the logistic regression; folds stratified by y, scaling fit per fold.

    `groups` (N,) keeps rows with one value in one fold (a bootstrap's copies of one case)."""
    groups = np.arange(len(y)) if groups is None else groups
    unique, first = np.unique(groups, return_index=True)  # each group's label is its first row's
    rng = np.random.default_rng(seed)
    group_fold = np.empty(len(unique), dtype=int)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(y[first] == label))
        group_fold[members] = np.arange(len(members)) % folds
    fold = group_fold[np.searchsorted(unique, groups)]
    scores = np.empty(len(y))
    for k in range(folds):
        train, test = fold != k, fold == k
        centre, scale = x[train].mean(axis=0), x[train].std(axis=0)
        scale[scale == 0] = 1.0  # a constant column carries no information within the training fold
        w = fit_logistic((x[train] - centre) / scale, y[train])
        scores[test] = w[0] + ((x[test] - centre) / scale) @ w[1:]
    return scores


@dataclass(frozen=True)
class Separability:
    """The classifier's out-of-fold AUC, its bootstrap interval, the permutation p and the top cues."""

    auc: float
    auc_low: float | None  # None without bootstraps
    auc_high: float | None
    p_value: float
    permutations: int
    folds: int
    n_real: int
    n_synthetic: int
    cues: list[dict]  # {"feature": label, "auc": separation by that feature alone}, strongest first

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    def sentence(self) -> str:
        """What the figure says, for the study page and the report."""
        return (
            f"A simple classifier on image statistics tells these sets apart with cross-validated AUC "
            f"{self.auc:.2f} (95 % CI {self.auc_low:.2f}–{self.auc_high:.2f}; permutation p = "
            f"{self.p_value:.3g}, {self.permutations} permutations)."
        )


def _cv_auc(x: np.ndarray, y: np.ndarray, folds: int, seed: int, groups: np.ndarray | None = None) -> float:
    return auc_from_scores(
        y.astype(bool), cross_validated_scores(x, y, folds=folds, seed=seed, groups=groups)
    )


def separability(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    permutations: int = PERMUTATIONS,
    bootstraps: int = BOOTSTRAPS,
) -> Separability:
    """Separability of features x (N, F) with labels y (N,) in {0, 1} (1 = synthetic)."""
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    folds = min(5, n_pos, n_neg)
    observed = _cv_auc(x, y, folds, seed)
    rng = np.random.default_rng(seed)
    null = np.array([_cv_auc(x, rng.permutation(y), folds, seed) for _ in range(permutations)])
    p_value = (1 + int((null >= observed).sum())) / (permutations + 1)
    by_label = [np.flatnonzero(y == label) for label in (0, 1)]
    boot = []
    for _ in range(bootstraps):
        rows = np.concatenate([rng.choice(idx, size=len(idx), replace=True) for idx in by_label])
        boot.append(_cv_auc(x[rows], y[rows], folds, seed, groups=rows))
    low, high = np.quantile(boot, [0.025, 0.975]) if boot else (None, None)
    single = [abs(auc_from_scores(y.astype(bool), x[:, j]) - 0.5) + 0.5 for j in range(x.shape[1])]
    ranked = sorted(zip(single, (label for _, label in FEATURES), strict=True), reverse=True)
    cues = [{"feature": label, "auc": round(a, 3)} for a, label in ranked[:3]]
    return Separability(
        float(observed),
        None if low is None else float(low),
        None if high is None else float(high),
        p_value,
        permutations,
        folds,
        n_neg,
        n_pos,
        cues,
    )


def of_cases(load: Callable[[int], bytes], truths: list[str], *, seed: int) -> Separability | None:
    """Separability of a study's cases (a seeded sample per group); None below MIN_PER_GROUP a group."""
    y_all = np.array([t == "synthetic" for t in truths], dtype=float)
    if min(int(y_all.sum()), int((y_all == 0).sum())) < MIN_PER_GROUP:
        return None
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(y_all == label))[:MAX_PER_GROUP] for label in (0, 1)]
    )
    x = np.stack([image_features(load(int(i))) for i in chosen])  # (N, F)
    return separability(x, y_all[chosen], seed=seed)
