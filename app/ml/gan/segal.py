"""Converter for the published chest X-ray PGGAN of Segal et al. 2021 (medigan 00020_PGGAN_CHEST_XRAY).

`Final_Full_Model.pth` is a torch.save'd dict with `settings` and `state_dict` (FACTS.md). The EMA
generator's tensors (`gen_shadow.` prefix) map one to one onto our Generator with
`GanConfig(scale_bias=True)`, because the authors' equalised layer scales its whole output, bias
included. Sizes are read from the tensors' shapes, not assumed. The file is read with
`torch.load(weights_only=True)` only, so nothing in it can run code; anything that is not a tensor or a
plain container is refused.

The layout is inferred from the authors' save code (FACTS.md), not read from the real file; the points
that could differ are listed in tests/unit/segal_reference.py. A key that is missing, unexpected or of
the wrong shape raises ValueError naming it, so a different layout fails loudly rather than quietly.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from app.ml.gan.config import GanConfig
from app.ml.gan.networks import Generator

SOURCE = "Segal et al. 2021 (medigan 00020_PGGAN_CHEST_XRAY)"
PREFIX = "gen_shadow."  # the EMA generator; `generator.` is the raw one
BUFFERS = ("current_size", "current_depth", "alpha")
_BLOCK_KEY = re.compile(r"ScaleBlocks\.(\d+)\.convolv\.0\.module\.weight")
_RGB_KEY = re.compile(r"toRGB\.(\d+)\.module\.weight")
# The part of torch's weights_only error that names what it refused (its wording varies by case).
_UNPICKLER_DETAIL = re.compile(r"[^\n.]*(GLOBAL \S+|Unsupported operand \d+)[^\n.]*")


class UnsafeCheckpoint(ValueError):
    """The file holds Python objects other than tensors and plain containers."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's restricted unpickler raises this for any global it does not allow (a class, a
        # function) and for opcodes it does not implement; nothing in the file has run by then.
        m = _UNPICKLER_DETAIL.search(str(exc))
        detail = " ".join(m.group(0).split()) if m else "a disallowed pickle instruction"
        raise UnsafeCheckpoint(
            f"{path.name} contains Python objects other than tensors; refusing to load it "
            f"(torch.load with weights_only=True stopped at: {detail}; a damaged file stops there too)"
        ) from exc
    except RuntimeError as exc:  # a damaged zip archive or truncated file
        raise ValueError(f"{path.name} is not a readable torch checkpoint: {exc}") from exc


def _tensor(g: Mapping[str, Any], key: str, prefix: str = PREFIX) -> Tensor:
    if key not in g:
        raise ValueError(f"checkpoint lacks {prefix}{key}; not the authors' generator layout")
    t = g[key]
    if not isinstance(t, Tensor):
        raise ValueError(f"{prefix}{key} is a {type(t).__name__}, not a tensor")
    return t


def _indices(g: Mapping[str, Any], pattern: re.Pattern[str], what: str) -> int:
    found = sorted(int(m.group(1)) for k in g if (m := pattern.fullmatch(k)))
    if found != list(range(len(found))):
        raise ValueError(f"{what} indices are not 0..n-1: {found}")
    return len(found)


def config_from_state(g: Mapping[str, Any]) -> GanConfig:
    """The GanConfig that the generator tensors (prefix already stripped) describe."""
    lin = _tensor(g, "latent_linear.0.module.weight")  # (16 * C0, z_dim)
    if lin.ndim != 2 or lin.shape[0] % 16:
        raise ValueError(f"latent_linear weight has shape {tuple(lin.shape)}, expected (16 * C0, z_dim)")
    n_blocks = _indices(g, _BLOCK_KEY, "ScaleBlocks")
    n_rgb = _indices(g, _RGB_KEY, "toRGB")
    if n_rgb != n_blocks + 1:
        raise ValueError(f"{n_blocks} ScaleBlocks need {n_blocks + 1} toRGB layers, found {n_rgb}")
    channels = [lin.shape[0] // 16]
    for i in range(n_blocks):
        channels.append(_tensor(g, f"ScaleBlocks.{i}.convolv.0.module.weight").shape[0])
    image_channels = _tensor(g, f"toRGB.{n_blocks}.module.weight").shape[0]
    return GanConfig(
        z_dim=lin.shape[1],
        resolution=4 * 2**n_blocks,
        image_channels=image_channels,
        channels=tuple(channels),
        pixel_range=(0.0, 1.0),
        scale_bias=True,
    )


def _key_map(cfg: GanConfig) -> dict[str, str]:
    # our parameter name -> the authors' module path (".weight" / ".bias" appended by the caller)
    pairs = {"latent": "latent_linear.0.module", "init_conv": "init_conv.0.module"}
    for i in range(cfg.depth_count - 1):
        pairs[f"blocks.{i}.conv1"] = f"ScaleBlocks.{i}.convolv.0.module"
        pairs[f"blocks.{i}.conv2"] = f"ScaleBlocks.{i}.convolv.3.module"
    for d in range(cfg.depth_count):
        pairs[f"to_rgb.{d}"] = f"toRGB.{d}.module"
    return {f"{ours}.{p}": f"{theirs}.{p}" for ours, theirs in pairs.items() for p in ("weight", "bias")}


def convert_state_dict(state: Mapping[str, Any], prefix: str = PREFIX) -> tuple[Generator, float]:
    """Our Generator from the authors' flat state dict, plus the fade-in alpha (ours) it was saved at."""
    g = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not g:
        raise ValueError(f"checkpoint has no {prefix}* tensors (the EMA generator)")
    cfg = config_from_state(g)
    with torch.random.fork_rng(devices=[]):  # the throw-away init must not move the caller's RNG
        gen = Generator(cfg)
    mapping = _key_map(cfg)
    ours = gen.state_dict()
    new_state = {}
    for our_key, their_key in mapping.items():
        t = _tensor(g, their_key, prefix)
        if tuple(t.shape) != tuple(ours[our_key].shape):
            raise ValueError(
                f"{prefix}{their_key} has shape {tuple(t.shape)}, expected {tuple(ours[our_key].shape)}"
            )
        new_state[our_key] = t.detach().to(torch.float32)
    unknown = sorted(set(g) - set(mapping.values()) - set(BUFFERS))
    if unknown:
        raise ValueError(f"unexpected generator tensors {[prefix + k for k in unknown[:5]]}")
    size = g.get("current_size")
    if isinstance(size, Tensor) and int(size) != cfg.resolution:
        raise ValueError(f"{prefix}current_size is {int(size)} but the blocks make {cfg.resolution} px")
    gen.load_state_dict(new_state, strict=True)
    gen.eval()
    # The authors' alpha = 1 shows only the old depth (the reverse of ours); a finished model has 0.
    their_alpha = g.get("alpha")
    alpha = 1.0 - float(their_alpha) if isinstance(their_alpha, Tensor) else 1.0
    return gen, alpha


def load_segal_checkpoint(path: Path) -> tuple[Generator, dict[str, Any]]:
    """Read `Final_Full_Model.pth` safely; returns the EMA generator (eval mode) and a manifest."""
    path = Path(path)
    ckpt = _safe_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise ValueError(f"{path.name} is not a dict with a 'state_dict' (the authors' checkpoint layout)")
    gen, alpha = convert_state_dict(ckpt["state_dict"])
    manifest = {
        "source": SOURCE,
        "source_sha256": _sha256(path),
        "resolution": gen.cfg.resolution,
        "image_channels": gen.cfg.image_channels,
        "depth": gen.cfg.depth_count - 1,
        "keys_used": len(_key_map(gen.cfg)),
        # the fade-in alpha (our convention) that reproduces the saved model exactly; 1.0 when finished
        "alpha": alpha,
    }
    return gen, manifest
