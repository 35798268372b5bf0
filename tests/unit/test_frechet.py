"""Fréchet distance: zero for a set against itself, equal to an independent eigenvalue computation and
to the closed form for diagonal Gaussians; the real-versus-real baseline at matched n; FID∞ on both sides;
the domain features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from app.ml.metrics.frechet import (
    FeatureStats,
    fid,
    fid_infinity,
    fid_infinity_minimum,
    frechet_distance,
    matched_baseline,
)


def independent(a: FeatureStats, b: FeatureStats) -> float:
    """tr((S1 S2)^½) as the sum of square roots of the eigenvalues of S1^½ S2 S1^½ (symmetric, >= 0)."""
    root = linalg.sqrtm(a.sigma).real
    eig = np.linalg.eigvalsh(root @ b.sigma @ root)
    diff = a.mu - b.mu
    return float(
        diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * np.sqrt(np.clip(eig, 0, None)).sum()
    )


@pytest.mark.parametrize("seed", range(4))
def test_matches_an_independent_computation_on_random_gaussians(seed):
    rng = np.random.default_rng(seed)
    d = 16
    x = rng.normal(size=(400, d)) @ rng.normal(size=(d, d))
    y = rng.normal(loc=0.3, size=(300, d)) @ rng.normal(size=(d, d))
    a, b = FeatureStats.of(x), FeatureStats.of(y)
    assert frechet_distance(a, b) == pytest.approx(independent(a, b), rel=1e-6)


def test_a_set_against_itself_is_zero_and_diagonal_gaussians_follow_the_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    assert frechet_distance(FeatureStats.of(x), FeatureStats.of(x)) == pytest.approx(0, abs=1e-8)
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    a, b = FeatureStats(mu1, np.diag(s1), 10), FeatureStats(mu2, np.diag(s2), 10)
    expected = 5.0 + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def correlated(rng: np.random.Generator, mixing: np.ndarray, n: int) -> np.ndarray:
    """n draws of one fixed correlated Gaussian with a decaying spectrum, like network features."""
    d = len(mixing)
    return (rng.normal(size=(n, d)) / np.sqrt(np.arange(1, d + 1))) @ mixing


@pytest.mark.parametrize(("seed", "n"), [(0, 60), (1, 200), (2, 500)])
def test_same_distribution_gives_a_matched_ratio_near_one(seed, n):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(64, 64))
    real, synthetic = correlated(rng, mixing, 2 * n), correlated(rng, mixing, n)
    matched = matched_baseline(real, synthetic, seed=seed)
    assert matched.n == n and not matched.limited and matched.repeats == 5
    assert 0.9 <= matched.ratio <= 1.1
    # The old baseline, two halves of n/2 beside the distance at n, calls a perfect generator twice as good
    # as real films are to each other.
    halves = fid(real[: n // 2], real[n // 2 : n])
    assert fid(real[:n], synthetic) / halves < 0.7


def test_a_shifted_set_stands_out_and_too_few_real_films_shrink_n():
    rng = np.random.default_rng(3)
    mixing = rng.normal(size=(16, 16))
    real = correlated(rng, mixing, 150)
    shifted = correlated(rng, mixing, 100) + 2.0
    matched = matched_baseline(real, shifted, seed=0)
    assert matched.ratio > 5
    assert (matched.n, matched.synthetic_available, matched.limited) == (75, 100, True)
    with pytest.raises(ValueError, match="at least 4 real films"):
        matched_baseline(real[:3], shifted)


def test_fid_infinity_shrinks_both_sides_and_reads_near_zero_for_one_distribution():
    rng = np.random.default_rng(4)
    d = 48
    mixing = rng.normal(size=(d, d))
    n = fid_infinity_minimum(d)
    real, same = correlated(rng, mixing, n), correlated(rng, mixing, n)
    fit = fid_infinity(real, same, seed=0)
    assert [m for m, _ in fit.points] == [int(n * f) for f in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)]
    assert fit.points[0][1] > fit.points[-1][1]  # biased upwards at small n
    assert abs(fit.value) < 0.05 * fid(real, same)  # the bias lives in 1/n, on both sides
    # A real difference survives: a shift of 1 in every dimension is a distance of d between the Gaussians.
    assert fid_infinity(real, same + 1.0, seed=0).value == pytest.approx(d, rel=0.2)
    with pytest.raises(ValueError, match=f"at least {n:,} images on each side"):
        fid_infinity(real[: n - 1], same)


def test_the_full_rank_path_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(5)
    a = correlated(rng, rng.normal(size=(24, 24)), 300)
    b = correlated(rng, rng.normal(size=(24, 24)), 200) + 0.1
    assert fid(a, b) == pytest.approx(frechet_distance(FeatureStats.of(a), FeatureStats.of(b)), rel=1e-8)


def test_domain_features_separate_phantoms_from_noise_with_the_bundled_classifier():
    torch = pytest.importorskip("torch")  # noqa: F841
    from pathlib import Path

    from app.ml import phantoms as ph
    from app.ml.classifier.checkpoints import load_classifier
    from app.ml.metrics.domain import classifier_features

    model, _ = load_classifier(Path(__file__).resolve().parents[2] / "model_store" / "phantom-classifier-64")
    a = classifier_features(model, (p.image for p in ph.generate(48, size=64, seed=1, config=ph.DEMO_CONFIG)))
    b = classifier_features(model, (p.image for p in ph.generate(48, size=64, seed=2, config=ph.DEMO_CONFIG)))
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 64), dtype=np.uint8)
    c = classifier_features(model, noise)
    assert a.shape == (48, model.net.feature_dim)
    near = frechet_distance(FeatureStats.of(a), FeatureStats.of(b))
    far = frechet_distance(FeatureStats.of(a), FeatureStats.of(c))
    assert far > 10 * near
