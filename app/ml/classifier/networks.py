"""Classifier networks: (N, 1, s, s) images in [0, 1] -> (N, F) logits, plus penultimate features.

DenseNet-121 follows CheXNet (Rajpurkar et al. 2017): torchvision's network with a new linear head, the
grey film repeated to three channels so ImageNet weights (from a local file) fit. The small CNN is a
five-block convnet that learns phantoms in minutes on a CPU.
"""

from __future__ import annotations

import re
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


# torchvision's own files (and CheXNet ports) name BN/conv keys "denselayer1.norm.1.weight" where the
# module is "denselayer1.norm1.weight"; torchvision renames them the same way when it loads them.
_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
_PREFIXES = ("module.", "densenet121.", "model.")


def load_backbone(net: nn.Module, state: dict[str, Tensor]) -> int:
    """Load a DenseNet-121 state_dict without its head; refuse one that leaves backbone layers unset."""
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError("the weights file is not a state_dict of tensors")
    clean: dict[str, Tensor] = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            key = key.removeprefix(prefix)
        m = _OLD_KEY.match(key)
        clean[m.group(1) + m.group(2) if m else key] = value
    body = {k: v for k, v in clean.items() if not k.startswith("classifier.")}
    # BatchNorm's counters are absent from older files and do not affect inference.
    required = [
        k
        for k in net.state_dict()
        if not k.startswith("classifier.") and not k.endswith("num_batches_tracked")
    ]
    missing = [k for k in required if k not in body]
    if missing:
        raise ValueError(f"the weights leave {len(missing)} DenseNet-121 tensors unset (e.g. {missing[0]})")
    net.load_state_dict(body, strict=False)
    return len(body)


class DenseNet121(nn.Module):
    """torchvision's DenseNet-121 on a grey film repeated to 3 channels, with an F-way linear head."""

    def __init__(self, n_out: int, weights: Path | None = None) -> None:
        super().__init__()
        from torchvision.models import densenet121

        net = densenet121(weights=None)
        if weights is not None:  # e.g. ImageNet weights the user brought; the old head is dropped
            load_backbone(net, torch.load(weights, map_location="cpu", weights_only=True))
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
