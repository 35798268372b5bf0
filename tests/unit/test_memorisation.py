"""The memorisation audit flags an exact duplicate and a lightly perturbed copy of a training film and
passes disjoint phantoms; SSIM behaves as SSIM; the blockwise nearest-neighbour search is exact over every
training row, however the rows are split into blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.ml.metrics import memorisation
from app.ml.metrics.memorisation import NearestSearch, Thresholds, audit, nearest, ssim


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
    from app.jobs.tasks.memorisation import holdout_split

    patients = [f"p{i // 2}" for i in range(20)] + [None] * 5  # 10 patients with two films, 5 without an id
    rest, held = holdout_split(patients, seed=0)
    assert sorted(rest.tolist() + held.tolist()) == list(range(25))
    assert {patients[i] for i in held if patients[i]}.isdisjoint({patients[i] for i in rest if patients[i]})
    assert 2 <= len(held) <= 8  # a fifth of 15 patients, some with two films


def _brute_force(train: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = train / np.linalg.norm(train, axis=1, keepdims=True)
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    sim = q @ t.T
    return sim.argmax(axis=1), 1 - sim.max(axis=1)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000, 5000])
def test_blockwise_search_equals_one_search_over_the_whole_matrix(chunk, monkeypatch):
    monkeypatch.setattr(memorisation, "QUERY_TILE", 13)  # several query tiles, the last one short
    rng = np.random.default_rng(2)
    train, query = rng.normal(size=(1000, 24)), rng.normal(size=(50, 24))
    idx, dist = nearest(train, query, chunk=chunk)
    want_idx, want_dist = _brute_force(train, query)
    assert idx.tolist() == want_idx.tolist()
    np.testing.assert_allclose(dist, want_dist, atol=1e-6)


def test_a_copy_in_the_last_block_of_a_large_training_set_is_found():
    """The old audit searched a capped subset (5,000 films); the search now reaches every row."""
    rng = np.random.default_rng(3)
    train = rng.normal(size=(12_000, 32)).astype(np.float32)
    query = np.concatenate([train[[11_999, 7]], rng.normal(size=(3, 32))])
    idx, dist = nearest(train, query, chunk=4096)
    assert idx[:2].tolist() == [11_999, 7] and (dist[:2] < 1e-6).all() and (dist[2:] > 0.1).all()


def test_rows_left_out_of_a_search_are_never_its_answer():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(40, 8))
    search = NearestSearch(train[[5, 30]])  # two queries that are training rows themselves
    for offset in range(0, 40, 16):
        keep = ~np.isin(np.arange(offset, min(offset + 16, 40)), [5, 30])
        search.update(train[offset : offset + 16], offset=offset, keep=keep)
    idx, dist = search.result()
    others = np.delete(np.arange(40), [5, 30])
    assert search.searched == 38
    assert idx.tolist() == others[_brute_force(train[others], train[[5, 30]])[0]].tolist()
    assert (dist > 0.01).all()


def test_a_search_over_nothing_is_an_error():
    search = NearestSearch(np.ones((2, 3)))
    search.update(np.ones((4, 3)), offset=0, keep=np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="no training rows"):
        search.result()


def test_thresholds_are_quantiles_of_the_held_out_films_and_need_both_measures():
    limits = Thresholds.calibrate(np.linspace(0.1, 1.0, 101), np.linspace(0.0, 0.5, 101), quantile=0.01)
    assert limits.distance == pytest.approx(0.109) and limits.ssim == pytest.approx(0.495)
    flags = limits.flags(np.array([0.05, 0.05, 0.5]), np.array([0.9, 0.3, 0.9]))
    assert flags.tolist() == [True, False, False]
    with pytest.raises(ValueError):
        Thresholds.calibrate(np.zeros(0), np.zeros(0), quantile=0.01)
