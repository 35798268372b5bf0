"""The memorisation audit flags an exact duplicate and a lightly perturbed copy of a training film and
passes disjoint phantoms; SSIM behaves as SSIM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.ml.metrics.memorisation import audit, nearest, ssim


def test_ssim_is_one_for_identical_images_and_lower_for_different_ones():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, rng.integers(0, 256, (32, 32)).astype(np.uint8)) < 0.2
    assert ssim(a, np.clip(a.astype(int) + 2, 0, 255)) > 0.95


def test_nearest_finds_the_closest_direction():
    train = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    idx, dist = nearest(train, np.array([[0.1, 2.0], [3.0, 2.9]]))
    assert idx.tolist() == [1, 2] and (dist >= 0).all() and dist[1] < 1e-3


def test_audit_flags_copies_and_passes_disjoint_films():
    pytest.importorskip("torch")
    from app.ml import phantoms as ph
    from app.ml.classifier.checkpoints import load_classifier
    from app.ml.metrics.domain import classifier_features

    model, _ = load_classifier(Path(__file__).resolve().parents[2] / "model_store" / "phantom-classifier-64")

    def films(n: int, seed: int) -> np.ndarray:
        return np.stack([p.image for p in ph.generate(n, size=64, seed=seed, config=ph.DEMO_CONFIG)])

    def small(x: np.ndarray) -> np.ndarray:  # the audit compares at low resolution
        return np.stack([np.asarray(Image.fromarray(f).resize((32, 32), Image.Resampling.BOX)) for f in x])

    train, holdout, fresh = films(80, 0), films(40, 1), films(12, 2)
    rng = np.random.default_rng(0)
    perturbed = np.clip(train[5].astype(int) + rng.normal(0, 2, train[5].shape) + 3, 0, 255).astype(np.uint8)
    generated = np.concatenate([train[3:4], perturbed[None], fresh])
    f = {name: classifier_features(model, x) for name, x in (("t", train), ("h", holdout), ("g", generated))}
    result = audit(f["t"], small(train), f["h"], small(holdout), f["g"], small(generated), quantile=0.01)
    assert result.flagged[:2].all(), (result.distance[:2], result.ssim[:2], result.distance_threshold)
    assert result.nearest_index[:2].tolist() == [3, 5]
    assert not result.flagged[2:].any(), (result.distance[2:], result.ssim[2:], result.ssim_threshold)


def test_a_copy_of_a_film_held_out_for_calibration_is_still_found():
    """Generates are searched against the whole training set, not only the films left after holding out."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(30, 8))
    films = rng.integers(0, 256, (30, 16, 16)).astype(np.uint8)
    rest, held = np.arange(24), np.arange(24, 30)
    copy_of_held = 27
    result = audit(
        features[rest],
        films[rest],
        features[held],
        films[held],
        features[[copy_of_held]],
        films[[copy_of_held]],
        quantile=0.2,
        reference=(features, films),
    )
    assert result.nearest_index.tolist() == [copy_of_held] and result.flagged.tolist() == [True]


def test_holdout_split_keeps_patients_together():
    pytest.importorskip("procrastinate")
    from app.jobs.tasks.audit import holdout_split

    patients = [f"p{i // 2}" for i in range(20)] + [None] * 5  # 10 patients with two films, 5 without an id
    rest, held = holdout_split(patients, seed=0)
    assert sorted(rest.tolist() + held.tolist()) == list(range(25))
    assert {patients[i] for i in held if patients[i]}.isdisjoint({patients[i] for i in rest if patients[i]})
    assert 2 <= len(held) <= 8  # a fifth of 15 patients, some with two films
