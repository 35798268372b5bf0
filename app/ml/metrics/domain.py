"""Domain features for a Fréchet distance that needs no outside weights: the penultimate layer of the
project's own chest X-ray classifier (app.ml.classifier), on films as the renderer stores them."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from app.ml.classifier.networks import Classifier


@torch.no_grad()
def classifier_features(model: Classifier, films: Iterable[np.ndarray], *, batch: int = 64) -> np.ndarray:
    """(N, D) penultimate features of (H, W) uint8 films."""
    model.eval()
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        x = torch.from_numpy(np.stack(pending)).float().div_(255).unsqueeze(1).to(device)
        out.append(model.features(x).double().cpu().numpy())
        pending.clear()

    for film in films:
        pending.append(np.asarray(film, dtype=np.uint8))
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    return np.concatenate(out) if out else np.zeros((0, 0))
