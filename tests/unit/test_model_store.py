"""The bundled demo weights load without unpickling, with matching hashes and complete manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

STORE = Path(__file__).resolve().parents[2] / "model_store"
FOLDERS = sorted(p for p in STORE.iterdir() if (p / "manifest.json").exists()) if STORE.exists() else []
MODELS = [p for p in FOLDERS if json.loads((p / "manifest.json").read_text()).get("kind") != "classifier"]
CLASSIFIERS = [p for p in FOLDERS if p not in MODELS]
REQUIRED = ("sha256", "resolution", "images_seen", "data", "command", "train_config")


@pytest.mark.parametrize("folder", MODELS, ids=[p.name for p in MODELS])
def test_bundled_model_loads_and_samples(folder: Path):
    from app.ml.gan.checkpoints import load_model
    from app.ml.gan.sampling import sample

    manifest = json.loads((folder / "manifest.json").read_text())
    for key in REQUIRED:
        assert key in manifest, key
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 20 * 1024 * 1024
    generator, loaded = load_model(folder)  # checks the weights' sha256 against the manifest
    assert loaded["sha256"] == manifest["sha256"]
    images = list(sample(generator, 2, seed=0, batch=2))
    side = manifest["resolution"]
    assert [i for i, _ in images] == [0, 1] and images[0][1].shape == (side, side)
    assert images[0][1].std() > 5  # a picture, not a constant


def test_the_demo_model_is_bundled():
    assert "phantom-pggan-64" in [p.name for p in MODELS]
    assert "phantom-classifier-64" in [p.name for p in CLASSIFIERS]


@pytest.mark.parametrize("folder", CLASSIFIERS, ids=[p.name for p in CLASSIFIERS])
def test_bundled_classifier_loads_with_thresholds_and_its_test_auroc(folder: Path):
    from app.ml import phantoms as ph
    from app.ml.classifier.checkpoints import load_classifier, thresholds_of
    from app.ml.classifier.train import predict

    model, manifest = load_classifier(folder)  # checks the sha256
    for key in ("data", "command", "train_config", "auroc_test", "auroc_val", "thresholds", "findings"):
        assert key in manifest, key
    assert sum(f.stat().st_size for f in folder.iterdir()) < 20 * 1024 * 1024
    assert len(thresholds_of(manifest)) == len(manifest["findings"])
    assert "/tmp" not in manifest["command"] and "/work" not in manifest["command"]
    # It still tells a phantom with effusion from one without (fresh films, not its training data).
    size = model.cfg.image_size
    films = [ph.phantom(0, size=size, seed=999, findings=f) for f in ((), ("Effusion",))]
    x = torch.from_numpy(np.stack([f.image for f in films])).float().div(255).unsqueeze(1)
    p = predict(model, x)[:, manifest["findings"].index("Effusion")]
    assert p[1] > p[0] + 0.3
