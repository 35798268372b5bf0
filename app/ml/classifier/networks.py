"""Classifier networks: (N, 1, s, s) images in [0, 1] -> (N, F) logits, plus penultimate features.

DenseNet-121 follows CheXNet (Rajpurkar et al. 2017): torchvision's network with a new linear head, the
grey film repeated to three channels so ImageNet weights (from a local file) fit. The small CNN is a
five-block convnet that learns phantoms in minutes on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.classifier.config import ClassifierConfig

# ImageNet statistics of the grey mean; a film in [0, 1] is normalised with these for either network.
MEAN, STD = 0.449, 0.226


class SmallCNN(nn.Module):
    """Five (conv 3x3, BN, ReLU, stride-2 conv) blocks, global average pool, linear head."""

    def __init__(self, n_out: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i in range(5):
            c = width * min(2**i, 8)
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            layers += [
                nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            ]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.feature_dim = c_in
        self.head = nn.Linear(c_in, n_out)

    def features(self, x: Tensor) -> Tensor:
        """(N, 1, s, s) normalised -> (N, D) pooled features."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class DenseNet121(nn.Module):
    """torchvision's DenseNet-121 on a grey film repeated to 3 channels, with an F-way linear head."""

    def __init__(self, n_out: int, weights: Path | None = None) -> None:
        super().__init__()
        from torchvision.models import densenet121

        net = densenet121(weights=None)
        if weights is not None:  # e.g. ImageNet weights the user brought; the old head is dropped
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
            net.load_state_dict(state, strict=False)
        self.body = net.features
        self.feature_dim = net.classifier.in_features
        self.head = nn.Linear(self.feature_dim, n_out)

    def features(self, x: Tensor) -> Tensor:
        """(N, 1, s, s) normalised -> (N, 1024) pooled features."""
        h = F.relu(self.body(x.expand(-1, 3, -1, -1)))
        return F.adaptive_avg_pool2d(h, 1).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class Classifier(nn.Module):
    """Resizes and normalises the input, then runs the configured network."""

    def __init__(self, cfg: ClassifierConfig, backbone_weights: Path | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        n = len(cfg.findings)
        self.net: nn.Module = (
            SmallCNN(n, cfg.width) if cfg.arch == "small" else DenseNet121(n, backbone_weights)
        )

    def prepare(self, x: Tensor) -> Tensor:
        """(N, C, H, W) in [0, 1] -> (N, 1, s, s) normalised; differentiable, so LCO can backpropagate."""
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        s = self.cfg.image_size
        if x.shape[-1] != s or x.shape[-2] != s:
            x = F.interpolate(
                x, size=(s, s), mode="area" if x.shape[-1] > s else "bilinear", align_corners=None
            )
        return (x - MEAN) / STD

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features of images in [0, 1]: (N, D)."""
        return self.net.features(self.prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        """Images in [0, 1] -> (N, F) logits."""
        return self.net(self.prepare(x))
