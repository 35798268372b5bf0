"""Fréchet distance: zero for a set against itself, equal to an independent eigenvalue computation and
to the closed form for diagonal Gaussians; the real-versus-real baseline; FID∞; the domain features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from app.ml.metrics.frechet import FeatureStats, fid_infinity, frechet_distance, real_vs_real


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


def test_real_versus_real_is_small_for_one_distribution_and_fid_infinity_removes_the_small_n_bias():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(2000, 8))
    shifted = FeatureStats.of(rng.normal(loc=0.5, size=(1000, 8)))
    baseline = real_vs_real(real)  # about d(d+1)/n of small-sample bias, not zero
    assert 0 < baseline < 0.15 and frechet_distance(FeatureStats.of(real), shifted) > 10 * baseline
    reference = rng.normal(size=(20000, 8))
    same = rng.normal(size=(1000, 8))
    fit = fid_infinity(reference, same, seed=0)
    small_n = dict(fit.points)[min(dict(fit.points))]
    assert abs(fit.value) < small_n / 3  # the intercept is near 0: the bias lives in 1/n


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
