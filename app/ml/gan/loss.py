"""WGAN-GP losses (Gulrajani et al. 2017) with PGGAN's drift term (Karras et al. 2018, appendix A.1).

Critic: E[D(fake)] - E[D(real)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2] + epsilon * E[D(real)^2], with
x_hat = eps * real + (1 - eps) * fake and eps ~ U(0, 1) per sample; lambda = 10, epsilon = 0.001.
Generator: -E[D(fake)]. Scores are cast to float32 before any reduction so bf16 autocast only touches
the networks' convolutions, never the loss arithmetic; the penalty's critic pass and double backward run
wholly in float32 (`gradient_penalty`), since bf16 gets their weight gradient badly wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

Critic = Callable[..., Tensor]  # D(x, depth, alpha) -> (N,) scores


def gradient_penalty(
    D: Critic, real: Tensor, fake: Tensor, *, depth: int, alpha: float, eps: Tensor | None = None
) -> Tensor:
    """E[(||dD/dx at x_hat||_2 - 1)^2] over the batch, before the lambda weight."""
    n = real.shape[0]
    dtype = torch.promote_types(real.dtype, torch.float32)  # float32, or float64 when the data is
    if eps is None:
        eps = torch.rand(n, device=real.device)
    eps = eps.to(device=real.device, dtype=dtype).view(n, 1, 1, 1)  # (N, 1, 1, 1)
    # under bf16 autocast G's output is bf16 while the data is float32: mix in float32
    x_hat = torch.lerp(fake.detach().to(dtype), real.detach().to(dtype), eps)  # (N, C, H, W)
    x_hat.requires_grad_(True)
    # Float32 even under bf16 autocast: the penalty's weight gradient is a second derivative scaled by
    # (||grad|| - 1), which is small once the critic is near 1-Lipschitz, so bf16's rounding of the
    # input gradient becomes most of it (cosine 0.87 to float32 in test_gan_precision.py, 0.45 on a
    # 32 px critic). It costs one of the critic's three passes in float32.
    with torch.autocast(x_hat.device.type, enabled=False):
        scores = D(x_hat, depth, alpha).float()  # (N,)
        # create_graph: the penalty is itself differentiated w.r.t. D's weights in the critic step
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # (N, C, H, W)
    norm = grad.float().flatten(1).norm(2, dim=1)  # (N,)
    return (norm - 1.0).square().mean()


def d_loss(
    D: Critic,
    real: Tensor,
    fake: Tensor,
    *,
    depth: int,
    alpha: float,
    gp_lambda: float = 10.0,
    drift: float = 0.001,
    eps: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The critic's WGAN-GP + drift loss and its detached parts (gp and drift before their weights)."""
    d_real = D(real, depth, alpha).float()  # (N,)
    d_fake = D(fake.detach(), depth, alpha).float()  # (N,)
    gp = gradient_penalty(D, real, fake, depth=depth, alpha=alpha, eps=eps)
    drift_term = d_real.square().mean()  # keeps the critic's output from drifting far from 0
    loss = d_fake.mean() - d_real.mean() + gp_lambda * gp + drift * drift_term
    stats = {
        "d_real": d_real.mean().detach(),
        "d_fake": d_fake.mean().detach(),
        "gp": gp.detach(),
        "drift": drift_term.detach(),
    }
    return loss, stats


def g_loss(D: Critic, fake: Tensor, *, depth: int, alpha: float) -> Tensor:
    """The generator's WGAN loss, -E[D(fake)]."""
    return -D(fake, depth, alpha).float().mean()


class CriticLoss(nn.Module):
    """`d_loss` as one module, so DistributedDataParallel sees one forward per backward.

    DDP expects exactly one forward of the wrapped module before each backward; the critic loss needs
    three D evaluations (real, fake, interpolates) and a double backward through the penalty. Wrapping
    the whole loss makes that a single DDP forward, and DDP's unused-parameter search walks the loss's
    graph, penalty gradient included, so every weight's gradient is all-reduced exactly once.
    """

    def __init__(self, D: nn.Module, *, gp_lambda: float = 10.0, drift: float = 0.001) -> None:
        super().__init__()
        self.D = D
        self.gp_lambda = gp_lambda
        self.drift = drift

    def forward(
        self, real: Tensor, fake: Tensor, eps: Tensor, depth: int, alpha: float
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss, stats) as `d_loss` returns them."""
        return d_loss(
            self.D,
            real,
            fake,
            depth=depth,
            alpha=alpha,
            gp_lambda=self.gp_lambda,
            drift=self.drift,
            eps=eps,
        )
