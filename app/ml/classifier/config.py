"""Classifier and training configuration: frozen dataclasses, one commented line per field, JSON on disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.ml.jsonable import JsonConfig

ARCHS = ("small", "densenet121")


@dataclass(frozen=True)
class ClassifierConfig(JsonConfig):
    """The network: what it predicts and what it reads."""

    findings: tuple[str, ...]  # one sigmoid output per finding, in this order
    arch: str = "small"  # "densenet121" (torchvision, as in CheXNet) or "small" (a 5-block CNN for phantoms)
    image_size: int = 64  # side length of the (N, 1, s, s) input in [0, 1]; other sizes are area-resized
    width: int = 32  # feature maps of the small CNN's first block (doubling per block, capped at 8x)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}")
        if not self.findings or len(set(self.findings)) != len(self.findings):
            raise ValueError("findings must be a non-empty list without repeats")
        if self.image_size < 16:
            raise ValueError("image_size must be at least 16")



@dataclass(frozen=True)
class ClassifierTrainConfig(JsonConfig):
    """How to train it."""

    epochs: int = 10  # passes over the training split
    batch: int = 32  # images per step
    lr: float = 1e-3  # Adam learning rate (CheXNet used 1e-3 with Adam)
    weight_decay: float = 1e-4  # L2 on all weights
    class_weighting: bool = (
        False  # BCE pos_weight = negatives / positives per finding (rare findings count more)
    )
    val_fraction: float = 0.15  # share of patients held out to pick thresholds and the best epoch
    test_fraction: float = (
        0.15  # share of patients held out for the reported AUROC (unless the data has splits)
    )
    rotate_deg: float = 5.0  # augmentation: uniform rotation in +-degrees (films are roughly upright)
    scale: float = 0.05  # augmentation: uniform zoom in 1 +- scale
    brightness: float = 0.1  # augmentation: intensity multiplied by 1 +- brightness
    seed: int = 0  # split, initialisation, batch order and augmentation
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the run
