"""Inception features (app.ml.metrics.inception) and FID, KID, precision/recall (app.ml.metrics.fidelity)
against torch-fidelity's own command line, with a randomly initialised Inception saved as the "weights
file" (the real one is never downloaded)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch_fidelity.metric_fid import fid_statistics_to_metric

from app.ml.metrics.fidelity import kid, precision_recall
from app.ml.metrics.frechet import FeatureStats, fid, fid_infinity, frechet_distance, matched_baseline
from app.ml.metrics.inception import inception_features, load_inception
from app.ml.phantoms import phantom
from tests.factories import random_inception_weights

pytestmark = pytest.mark.slow

N, SIZE = 16, 64


def films(seed: int) -> list[np.ndarray]:
    """N phantom films (SIZE, SIZE) uint8."""
    return [phantom(i, size=SIZE, seed=seed).image for i in range(N)]


def write_folder(folder: Path, images: list[np.ndarray]) -> Path:
    folder.mkdir()
    for i, film in enumerate(images):
        Image.fromarray(film, "L").save(folder / f"{i:03d}.png")
    return folder


def read_folder(folder: Path) -> list[np.ndarray]:
    """The films as the evaluate job reads stored PNGs: 8-bit grey."""
    return [np.asarray(Image.open(p).convert("L")) for p in sorted(folder.glob("*.png"))]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("inception")
    weights = random_inception_weights(root / "random-inception.pth")
    a = write_folder(root / "a", films(seed=0))
    b = write_folder(root / "b", films(seed=5))
    net = load_inception(weights.read_bytes())
    seen: list[int] = []
    feats_a = inception_features(net, read_folder(a), batch=6, progress_fn=lambda p: seen.append(p.done))
    feats_b = inception_features(net, read_folder(b), batch=6)
    # Another distribution (the same anatomy with inverted grey levels): KID must see it.
    feats_inverted = inception_features(net, [255 - f for f in films(seed=5)], batch=8)
    return {
        "weights": weights,
        "a": a,
        "b": b,
        "fa": feats_a,
        "fb": feats_b,
        "fi": feats_inverted,
        "progress": seen,
    }


def test_features_are_pool3_of_every_film_with_progress(setup):
    assert setup["fa"].shape == (N, 2048) and setup["fa"].dtype == np.float32
    assert setup["progress"] == [6, 12, 16]
    assert setup["fa"].std(axis=0).mean() > 1e-3  # alive features: the comparison below means something


def test_fid_equals_torch_fidelity_command_line(setup):
    cli = Path(sys.executable).with_name("fidelity")
    args = [str(cli), "--input1", str(setup["a"]), "--input2", str(setup["b"]), "--fid", "--cpu", "--json"]
    args += ["--silent", "--no-cache", "--feature-extractor-weights-path", str(setup["weights"])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout)["frechet_inception_distance"]
    ours = fid(setup["fa"], setup["fb"])
    assert theirs > 0.05  # two different phantom sets: far from zero, so 1e-3 is a real test
    assert ours == pytest.approx(theirs, rel=1e-3)
    # With fewer films than dimensions, the baseline's halves have singular covariances too.
    assert 0 < matched_baseline(setup["fa"], setup["fb"], seed=0).real_vs_real < 10 * theirs


def test_fid_is_torch_fidelitys_on_few_images_and_the_frechet_distance_on_many():
    rng = np.random.default_rng(1)
    # Fewer images than dimensions: singular covariances, where the trace comes from singular values.
    a, b = rng.normal(size=(20, 64)), rng.normal(0.3, 1.2, size=(25, 64))
    sa, sb = FeatureStats.of(a), FeatureStats.of(b)
    theirs = fid_statistics_to_metric(
        {"mu": sa.mu, "sigma": sa.sigma}, {"mu": sb.mu, "sigma": sb.sigma}, False
    )
    assert fid(a, b) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    # More images than dimensions: the same quantity as the project's Fréchet distance.
    a, b = rng.normal(size=(400, 12)), rng.normal(0.3, 1.2, size=(300, 12))
    assert fid(a, b) == pytest.approx(frechet_distance(FeatureStats.of(a), FeatureStats.of(b)), rel=1e-9)


def test_a_set_against_itself_is_zero_and_kid_precision_recall_are_sane(setup):
    fa, fi = setup["fa"].astype(np.float64), setup["fi"].astype(np.float64)
    apart = fid(fa, fi)
    assert fid(fa, fa) < 1e-6 * apart
    same, other = kid(fa, fa, subsets=20, seed=0), kid(fa, fi, subsets=20, seed=0)
    assert same.subset_size == N // 2 and other.subset_size == N // 2  # shrunk from 1000 to half the set
    # The unbiased MMD² is ~0 (slightly negative: X and Y share films) for one distribution, whether the
    # same films or fresh phantoms, and clearly positive for another.
    twins = kid(fa, setup["fb"].astype(np.float64), subsets=20, seed=0)
    assert other.mean > 0 and abs(same.mean) < 0.25 * other.mean and abs(twins.mean) < 0.25 * other.mean
    pr = precision_recall(fa, fa)
    assert (pr.precision, pr.recall, pr.k) == (1.0, 1.0, 3)
    far = precision_recall(fa, fa + 100.0)  # a generated set nowhere near the real manifold
    assert far.precision == 0.0 and far.recall == 0.0


def test_kid_subsets_differ_so_its_std_is_the_spread_of_kid_at_that_size():
    rng = np.random.default_rng(0)

    def draw(n: int, shift: float = 0.0) -> np.ndarray:
        return rng.normal(shift, 1.0, size=(n, 32))

    found = kid(draw(400), draw(400, 0.05), subsets=50, seed=0)
    assert found.subset_size == 200  # half of 400, not all of it (whose std is 4e-16)
    # The spread of KID over fresh draws at the same subset size: the std estimates it, within a factor 3.
    fresh = [kid(draw(400), draw(400, 0.05), subsets=1, seed=i).mean for i in range(30)]
    assert np.std(fresh) / 3 < found.std < 3 * np.std(fresh)


def test_fid_infinity_fits_fid_against_one_over_n(setup):
    fit = fid_infinity(setup["fa"], setup["fb"], sizes=[8, 12, 16], seed=0)
    assert [n for n, _ in fit.points] == [8, 12, 16]
    # FID is biased upwards at small n: the points fall as n grows, and FID∞ lies below them all.
    assert fit.points[0][1] > fit.points[-1][1] > fit.value


class NotATensor:
    """Anything torch.load(weights_only=True) must refuse to build."""


def test_load_accepts_tensors_only_and_the_right_network(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(2), "x": NotATensor()}, bad)
    with pytest.raises(ValueError, match="tensors only"):
        load_inception(bad.read_bytes())
    with pytest.raises(ValueError, match="tensors only"):
        load_inception(b"plain text, not a weights file")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(ValueError, match="do not fit"):
        load_inception(wrong.read_bytes())
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)  # would otherwise leave the network with random weights
    with pytest.raises(ValueError, match="state dict of tensors"):
        load_inception(empty.read_bytes())
