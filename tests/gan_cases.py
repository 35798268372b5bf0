"""Tiny PGGAN cases shared by the GAN unit tests and their CUDA counterparts in tests/gpu: seeded networks,
a critic near 1-Lipschitz for the bf16 gradient checks, and phantom films for a training run."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from app.ml.gan.config import GanConfig
from app.ml.gan.data import ImageData
from app.ml.gan.loss import gradient_penalty
from app.ml.gan.networks import Discriminator, Generator
from app.ml.phantoms import generate

# The fast sampling path's networks: 32 px, 4 stages.
FAST_CFG = dict(z_dim=32, resolution=32, channels=(32, 32, 16, 16))
# The bf16 checks: 16 px while the last block fades in, so both fromRGB paths are live.
PRECISION_CFG = GanConfig(z_dim=32, resolution=16, channels=(32, 32, 16))
DEPTH, ALPHA, N = 2, 0.5, 8
# The training runs: 4 -> 16 px.
TRAINING_CFG = GanConfig(z_dim=16, resolution=16, channels=(16, 16, 8))


def models(cfg: GanConfig, seed: int = 0) -> tuple[Generator, Discriminator]:
    """G and D of `cfg`, initialised from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return Generator(cfg).eval(), Discriminator(cfg).eval()


def input_grad_norms(D: Discriminator, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor):
    """(N,) norms of D's input gradient at the interpolates between fake and real."""
    x_hat = torch.lerp(fake, real, eps.view(-1, 1, 1, 1)).requires_grad_(True)  # (N, 1, 16, 16)
    (grad,) = torch.autograd.grad(D(x_hat, DEPTH, ALPHA).sum(), x_hat)
    return grad.flatten(1).norm(dim=1)  # (N,)


def _unit_norm(D: Discriminator, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> None:
    mean = input_grad_norms(D, real, fake, eps).mean()
    with torch.no_grad():
        D.score.weight /= mean  # the scores, hence their input gradients, scale with the last layer


def near_lipschitz_critic() -> tuple[Discriminator, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A critic whose input-gradient norm is within a few per cent of 1 on every interpolate, with its
    (real, fake, eps): a few float32 penalty-only steps, then the score layer rescaled to mean norm 1."""
    torch.manual_seed(0)
    G, D = Generator(PRECISION_CFG), Discriminator(PRECISION_CFG)
    films = np.stack([p.image for p in generate(N, size=16, seed=3)])  # (N, 16, 16) uint8
    real = torch.from_numpy(films).float().div(127.5).sub(1).unsqueeze(1)  # (N, 1, 16, 16) in [-1, 1]
    g = torch.Generator().manual_seed(1)
    z, eps = torch.randn(N, PRECISION_CFG.z_dim, generator=g), torch.rand(N, generator=g)
    with torch.no_grad():
        fake = G(z, DEPTH, ALPHA).bfloat16().float()  # values G's bf16 output can hold: same input both ways
    opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    for _ in range(20):  # float32, penalty only
        _unit_norm(D, real, fake, eps)
        opt.zero_grad()
        gradient_penalty(D, real, fake, depth=DEPTH, alpha=ALPHA, eps=eps).backward()
        opt.step()
    _unit_norm(D, real, fake, eps)
    return D, real, fake, eps


def weight_grad(D: Discriminator, loss_fn, bf16: bool) -> torch.Tensor:
    """D's flattened weight gradient of `loss_fn()`, under bf16 autocast on D's device or not."""
    D.zero_grad(set_to_none=True)
    device = next(D.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        loss = loss_fn()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two gradients, in float64."""
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))


def phantom_data() -> tuple[ImageData, np.ndarray]:
    """48 phantom films of 16 px as training data, and the films."""
    imgs = np.stack([p.image for p in generate(48, size=16, seed=3)])  # (48, 16, 16) uint8
    return ImageData.from_arrays(imgs, resolution=16), imgs
