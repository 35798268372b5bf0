"""Classifier snapshots in the GAN's format: safetensors weights, config.json, manifest.json (last).

The manifest holds the operating thresholds per finding and the AUROC table, so LCO and the archive can
use a classifier with nothing but its folder; loading never unpickles.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from app.ml.classifier.config import ClassifierConfig
from app.ml.classifier.metrics import Auroc, macro_mean
from app.ml.classifier.networks import Classifier
from app.ml.files import atomic_write, write_json

SNAPSHOT_FORMAT = "cxrlab-classifier-snapshot/1"
WEIGHTS_FILE = "classifier.safetensors"


def auroc_json(table: dict[str, Auroc]) -> dict[str, Any]:
    """An AUROC table as plain JSON, with its macro mean."""
    return {"per_finding": {k: asdict(v) for k, v in table.items()}, "macro": macro_mean(table)}


def save_classifier(
    model: Classifier, directory: Path, *, thresholds: np.ndarray, manifest: dict[str, Any]
) -> Path:
    """Write weights, config and manifest (with thresholds and sha256) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    blob = safetensors.torch.save(tensors, metadata={"format": SNAPSHOT_FORMAT})
    atomic_write(directory / WEIGHTS_FILE, lambda f: f.write(blob))
    write_json(directory / "config.json", model.cfg.to_dict())
    full = {
        **manifest,
        "format": SNAPSHOT_FORMAT,
        "kind": "classifier",
        "weights": WEIGHTS_FILE,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "findings": list(model.cfg.findings),
        "thresholds": {f: float(t) for f, t in zip(model.cfg.findings, thresholds, strict=True)},
    }
    write_json(directory / "manifest.json", full)
    return directory


def load_classifier(directory: Path, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """(classifier in eval mode without gradients, manifest); the weights' sha256 is checked."""
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    if manifest.get("kind") != "classifier":
        raise ValueError(f"{directory} is not a classifier snapshot")
    cfg = ClassifierConfig.from_dict(json.loads((directory / "config.json").read_text()))
    weights = directory / WEIGHTS_FILE
    if hashlib.sha256(weights.read_bytes()).hexdigest() != manifest["sha256"]:
        raise ValueError(f"{weights} does not match the sha256 in its manifest")
    with torch.random.fork_rng(devices=[]):
        model = Classifier(cfg)
    model.load_state_dict(safetensors.torch.load_file(weights, device="cpu"), strict=True)
    model.to(device).eval().requires_grad_(False)
    return model, manifest


def thresholds_of(manifest: dict[str, Any]) -> np.ndarray:
    """The manifest's thresholds in the classifier's finding order."""
    return np.array([manifest["thresholds"][f] for f in manifest["findings"]], dtype=np.float64)
