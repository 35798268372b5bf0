"""Inception-v3 features for FID (Heusel et al. 2017), KID (Bińkowski et al. 2018) and precision/recall
(Kynkäänniemi et al. 2019), through torch-fidelity 0.4.0.

The network is torch-fidelity's `inception-v3-compat`: the TensorFlow FID graph ported to PyTorch,
including its TF1 bilinear resize to 299 px and its (x - 128) / 128 scaling, so its 2048-d pool features
match the reference FID. Films are fed exactly as torch-fidelity's command line feeds a folder of PNGs:
PIL's convert("RGB") copies the grey channel three times, and uint8 pixels go in unchanged.

torch-fidelity's constructor reads a weights file with torch.load(weights_only=False), which may run
code from the file. We therefore hand it an empty placeholder (our own `{}`), keep the random
initialisation it leaves, and load the registered tensors ourselves with weights_only=True.
The metrics on these features are in app.ml.metrics.fidelity.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from app.ml.progress import Progress, ProgressFn

NAME = "inception-v3-compat"
FEATURE_LAYER = "2048"  # pool3, the layer FID, KID and precision/recall use
INPUT_SIZE = FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE  # 299
PREPROCESSING = (
    "stored 8-bit grey films copied to 3 channels (as PIL's convert('RGB') does for torch-fidelity's "
    "image folders), resized to 299 × 299 by torch-fidelity's TensorFlow-1 bilinear resize, "
    "scaled as (x - 128) / 128"
)


class _Network(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception, whose constructor's own load is given an empty placeholder."""

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load `state_dict`, except the constructor's empty placeholder."""
        if len(state_dict) == 0:  # the constructor's placeholder: weights come later, or stay random
            return None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def build_network() -> FeatureExtractorInceptionV3:
    """The network with torch's default random initialisation (seed torch first for a fixed one)."""
    placeholder = io.BytesIO()
    torch.save({}, placeholder)  # only our own empty dict is ever unpickled by the constructor
    placeholder.seek(0)
    return _Network(NAME, [FEATURE_LAYER], feature_extractor_weights_path=placeholder)


def _why(exc: Exception) -> str:
    """Torch's reason for refusing a file, without its advice to retry with weights_only=False.

    That advice (and the one to allow-list the global) would have an admin run the file's code; the
    file is to be refused, not trusted, so only what it holds is named.
    """
    text = str(exc)
    found = re.search(r"unsupported (?:global: )?GLOBAL ([\w.]+)", text, re.IGNORECASE)  # torch 2.6+
    if found:
        return f"it refers to code besides tensors ({found.group(1)})"
    if "weights_only" in text.lower() or "weights only" in text.lower():
        return "it holds objects besides tensors"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:300]


def load_inception(weights: bytes, *, device: torch.device | str = "cpu") -> FeatureExtractorInceptionV3:
    """The network with the weights in `weights` (a torch.save'd state dict), read with weights_only."""
    try:
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, unsafe globals, truncated zips: all mean "not usable"
        raise ValueError(f"the Inception weights file cannot be read as tensors only: {_why(exc)}") from exc
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        # An empty dict would pass load_state_dict below (it is how the network is built without weights).
        raise ValueError("the Inception weights file does not hold a state dict of tensors")
    net = build_network()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"the weights do not fit torch-fidelity's Inception-v3: {str(exc)[:300]}") from exc
    return net.to(device).eval()


@torch.no_grad()
def inception_features(
    net: FeatureExtractorInceptionV3,
    films: Sequence[np.ndarray],
    *,
    batch: int = 32,
    progress_fn: ProgressFn | None = None,
) -> np.ndarray:
    """(N, 2048) float32 pool features of (H, W) uint8 films of one size, reporting films done."""
    device = next(net.parameters()).device
    out: list[np.ndarray] = []
    for start in range(0, len(films), batch):
        chunk = np.stack([np.asarray(f, dtype=np.uint8) for f in films[start : start + batch]])  # (B, H, W)
        x = torch.from_numpy(chunk).to(device).unsqueeze(1).expand(-1, 3, -1, -1)  # (B, 3, H, W) uint8
        (features,) = net(x.contiguous())  # (B, 2048) float32
        out.append(features.cpu().numpy())
        if progress_fn is not None:
            done = min(start + batch, len(films))
            progress_fn(Progress(done, len(films), f"{done:,} / {len(films):,} films"))
    return np.concatenate(out) if out else np.zeros((0, 2048), dtype=np.float32)
