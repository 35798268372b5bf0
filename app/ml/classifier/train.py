"""Train a multi-label classifier with BCE (optionally class-weighted), chest-film augmentations, a
patient-wise split, best-epoch selection on validation macro AUROC, and Youden thresholds per finding.

Augmentations are small rotations, zooms and brightness changes. There is no horizontal flip: the heart
sits on the left, and a flipped film is a different (situs inversus) patient.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from app.ml.classifier.config import ClassifierConfig, ClassifierTrainConfig
from app.ml.classifier.metrics import Auroc, auroc_table, macro_mean, youden_thresholds
from app.ml.classifier.networks import Classifier
from app.ml.classifier.split import split_by_patient
from app.ml.progress import Progress, ProgressFn


@dataclass(frozen=True, kw_only=True)
class EpochProgress(Progress):
    """Optimiser steps of all epochs', and the epoch (from 1) they are in."""

    epoch: int
    epochs: int


@dataclass
class ClassifierResult:
    """The trained (best-epoch) model, its thresholds and its AUROC on validation and test."""

    model: Classifier
    thresholds: np.ndarray  # (F,)
    val: dict[str, Auroc]
    test: dict[str, Auroc]
    splits: dict[str, np.ndarray]
    history: list[dict[str, Any]] = field(default_factory=list)
    aborted: bool = False


def augment(x: Tensor, tcfg: ClassifierTrainConfig, gen: torch.Generator) -> Tensor:
    """Random rotation, zoom and brightness per image; (N, 1, s, s) in [0, 1] -> same."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(tcfg.rotate_deg)
    zoom = 1 + (torch.rand(n, generator=gen) * 2 - 1) * tcfg.scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1
    )
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    # Border padding: a rotated film shows its own edge rather than black corners no real film has.
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gain = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * tcfg.brightness
    return (x * gain.to(x)).clamp(0, 1)


def as_unit(batch: Tensor) -> Tensor:
    """uint8 films (N, s, s) -> float (N, 1, s, s) in [0, 1]; float input passes through."""
    return batch.float().div_(255).unsqueeze(1) if batch.dtype == torch.uint8 else batch


@torch.no_grad()
def predict(model: Classifier, images: Tensor, *, batch: int = 128) -> np.ndarray:
    """(N, s, s) uint8 or (N, 1, s, s) in [0, 1] -> (N, F) probabilities, converted a batch at a time."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        torch.sigmoid(model(as_unit(images[i : i + batch]).to(device))).cpu()
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, len(model.cfg.findings)))


def _epoch(
    model: Classifier,
    opt: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    order: np.ndarray,
    tcfg: ClassifierTrainConfig,
    gen: torch.Generator,
    *,
    device: str | torch.device,
    pos_weight: Tensor | None,
    abort_fn: Callable[[], bool] | None,
    on_step: Callable[[int], None],
) -> tuple[list[float], bool]:
    """One pass over the training films in `order`, a batch at a time: (the batch losses, aborted).
    `on_step` hears the number of steps taken in this epoch after each."""
    model.train()
    losses: list[float] = []
    for start in range(0, len(order), tcfg.batch):
        if abort_fn is not None and abort_fn():
            return losses, True
        idx = order[start : start + tcfg.batch]
        xb = augment(as_unit(x[idx]), tcfg, gen).to(device)  # (B, 1, s, s) augmented in [0, 1]
        loss = F.binary_cross_entropy_with_logits(model(xb), y[idx].to(device), pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        on_step(len(losses))
    return losses, False


def _val_auroc(
    model: Classifier, x: Tensor, y: Tensor, val_idx: np.ndarray, findings: tuple[str, ...]
) -> float | None:
    """Macro AUROC on the validation films, or None without any."""
    if not len(val_idx):
        return None
    return macro_mean(auroc_table(y[val_idx].numpy(), predict(model, x[val_idx]), findings))


def _result(
    model: Classifier, x: Tensor, y: Tensor, parts: dict[str, np.ndarray], findings: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, Auroc], dict[str, Auroc]]:
    """Youden thresholds picked on validation (0.5 without it), and the validation and test AUROC tables."""
    model.eval()
    val_probs = predict(model, x[parts["val"]])
    val_y = y[parts["val"]].numpy()
    thresholds = youden_thresholds(val_y, val_probs) if len(val_probs) else np.full(len(findings), 0.5)
    test_probs = predict(model, x[parts["test"]])
    val = auroc_table(val_y, val_probs, findings)
    return thresholds, val, auroc_table(y[parts["test"]].numpy(), test_probs, findings)


def train_classifier(
    cfg: ClassifierConfig,
    tcfg: ClassifierTrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    patients: Sequence[str | None] | None = None,
    splits: Sequence[str | None] | None = None,
    run_dir: Path | None = None,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
    device: str | torch.device = "cpu",
    backbone_weights: Path | None = None,
    parts: dict[str, np.ndarray] | None = None,
) -> ClassifierResult:
    """Train on (N, s, s) uint8 `images` with (N, F) 0/1 `labels`; see the module docstring.

    `parts` ("train", "val", "test" index arrays) replaces the patient-wise split, e.g. to train on
    synthetic films and validate and test on real ones. The epoch with the best validation macro AUROC
    (the lowest loss without validation films) is kept.
    """
    torch.manual_seed(tcfg.seed)
    gen = torch.Generator().manual_seed(tcfg.seed)
    if parts is None:
        parts = split_by_patient(
            len(images),
            patients=patients,
            given=splits,
            val_fraction=tcfg.val_fraction,
            test_fraction=tcfg.test_fraction,
            seed=tcfg.seed,
        )
    # Kept as uint8 (N, s, s) and converted a batch at a time: a float copy of ChestX-ray14 would not fit.
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))  # (N, F)
    model = Classifier(cfg, backbone_weights).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    train_idx = parts["train"]
    pos_weight = None
    if tcfg.class_weighting:
        pos = y[train_idx].sum(0)
        pos_weight = ((len(train_idx) - pos) / pos.clamp(min=1)).clamp(1, 100).to(device)
    steps_per_epoch = max(1, math.ceil(len(train_idx) / tcfg.batch))
    total = tcfg.epochs * steps_per_epoch

    def report(epoch: int, step: int) -> None:
        if progress_fn is not None:
            note = f"epoch {epoch + 1} / {tcfg.epochs}"
            done = epoch * steps_per_epoch + step
            progress_fn(EpochProgress(done, total, note, epoch=epoch + 1, epochs=tcfg.epochs))

    best: tuple[float, dict[str, Tensor]] | None = None
    history: list[dict[str, Any]] = []
    aborted = False
    t0 = time.monotonic()
    for epoch in range(tcfg.epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        losses, aborted = _epoch(
            model, opt, x, y, order, tcfg, gen,
            device=device, pos_weight=pos_weight, abort_fn=abort_fn, on_step=partial(report, epoch),
        )  # fmt: skip
        if aborted:
            break
        val_auc = _val_auroc(model, x, y, parts["val"], cfg.findings)
        line = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)) if losses else None,
            "val_macro_auroc": val_auc,
            "wall_s": time.monotonic() - t0,
        }
        history.append(line)
        if run_dir is not None:
            with (Path(run_dir) / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(line) + "\n")
        score = val_auc if val_auc is not None else -float(line["loss"] or 0)
        if best is None or score > best[0]:
            best = (score, copy.deepcopy(model.state_dict()))
    if best is not None:
        model.load_state_dict(best[1])
    thresholds, val, test = _result(model, x, y, parts, cfg.findings)
    return ClassifierResult(
        model=model, thresholds=thresholds, val=val, test=test, splits=parts, history=history, aborted=aborted
    )
