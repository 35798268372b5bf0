"""The bundled demo weights load without unpickling, with matching hashes and complete manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

STORE = Path(__file__).resolve().parents[2] / "model_store"
MODELS = sorted(p for p in STORE.iterdir() if (p / "config.json").exists()) if STORE.exists() else []
REQUIRED = ("sha256", "resolution", "images_seen", "data", "command", "train_config")


@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_bundled_model_loads_and_samples(folder: Path):
    from app.ml.gan.checkpoints import load_snapshot
    from app.ml.gan.sampling import sample

    manifest = json.loads((folder / "manifest.json").read_text())
    for key in REQUIRED:
        assert key in manifest, key
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 20 * 1024 * 1024
    generator, loaded = load_snapshot(folder)  # checks the weights' sha256 against the manifest
    assert loaded["sha256"] == manifest["sha256"]
    images = list(sample(generator, 2, seed=0, batch=2))
    side = manifest["resolution"]
    assert [i for i, _ in images] == [0, 1] and images[0][1].shape == (side, side)
    assert images[0][1].std() > 5  # a picture, not a constant


def test_the_demo_model_is_bundled():
    assert "phantom-pggan-64" in [p.name for p in MODELS]
