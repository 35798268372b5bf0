"""Reproducible sampling from a PGGAN generator (Karras et al. 2018): latents, 8-bit images, grids.

Latent `index` of run `seed` comes from its own torch.Generator seeded from SeedSequence([seed, index]),
so an image is fixed by (seed, index) alone, whatever the batch size or how many images came before.
Outputs map linearly from the generator's pixel_range to 0..255; 3-channel outputs (the authors' RGB
generator) are averaged to grey.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor, nn


def _latent_seed(seed: int, index: int) -> int:
    # SeedSequence mixes (seed, index) so neighbouring indices give unrelated streams
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def latent(seed: int, index: int, z_dim: int) -> Tensor:
    """Latent `index` of run `seed`: (z_dim,) float32 standard normal."""
    g = torch.Generator().manual_seed(_latent_seed(seed, index))
    return torch.randn(z_dim, generator=g)


def latents(seed: int, start: int, count: int, z_dim: int) -> Tensor:
    """Latents start .. start + count - 1 stacked: (count, z_dim)."""
    return torch.stack([latent(seed, i, z_dim) for i in range(start, start + count)])


def to_uint8(x: Tensor, pixel_range: tuple[float, float]) -> np.ndarray:
    """Generator output (N, C, H, W) -> (N, H, W) uint8 grey: channel mean, linear map, clip, round."""
    lo, hi = pixel_range
    grey = x.detach().float().mean(dim=1)  # (N, H, W)
    scaled = (grey - lo) * (255.0 / (hi - lo))
    return scaled.clamp(0, 255).round().to(torch.uint8).cpu().numpy()


def sample(
    G: nn.Module,
    n: int,
    *,
    seed: int,
    batch: int = 16,
    device: str | torch.device = "cpu",
    depth: int | None = None,
    alpha: float = 1.0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (latent index, (H, W) uint8 grey image) for indices 0 .. n-1 of `seed`."""
    z_dim = G.cfg.z_dim
    pixel_range = G.cfg.pixel_range
    for start in range(0, n, batch):
        count = min(batch, n - start)
        z = latents(seed, start, count, z_dim).to(device)  # (count, z_dim)
        with torch.no_grad():
            images = to_uint8(G(z, depth, alpha), pixel_range)  # (count, H, W)
        for k in range(count):
            yield start + k, images[k]


def tile(images: list[np.ndarray], *, min_side: int = 64) -> np.ndarray:
    """A near-square grid of (H, W) uint8 images; tiles smaller than min_side are enlarged (nearest)."""
    h, w = images[0].shape
    factor = max(1, -(-min_side // h))  # integer upscale keeps 4 px samples visible and exact
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = -(-len(images) // cols)
    out = np.zeros((rows * h * factor, cols * w * factor), np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        big = np.kron(img, np.ones((factor, factor), np.uint8))
        out[r * h * factor : (r + 1) * h * factor, c * w * factor : (c + 1) * w * factor] = big
    return out


def grid(G: nn.Module, *, seed: int, n: int = 16, depth: int | None = None, alpha: float = 1.0) -> np.ndarray:
    """A grid of the first n samples of `seed` on G's device: (rows * h, cols * w) uint8."""
    device = next(G.parameters()).device
    return tile([img for _, img in sample(G, n, seed=seed, device=device, depth=depth, alpha=alpha)])
