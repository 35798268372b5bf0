"""The baseline LCO is measured against: draw latents, classify G(z), keep those whose labels match.

Acceptance uses the same rule as LCO's success (every finding on its side of the threshold by the
margin, in logits), so both produce archives with the same guarantee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from app.ml.gan.sampling import latents
from app.ml.lco.optimise import classify, reached, threshold_logits


@dataclass
class RejectionResult:
    """Accepted latents and probabilities, and how many latents were drawn to find them."""

    z: Tensor  # (K, d), K <= wanted
    probs: np.ndarray  # (K, F)
    drawn: int


@torch.no_grad()
def rejection_sample(
    G: nn.Module,
    C: nn.Module,
    target: np.ndarray,
    thresholds: np.ndarray,
    *,
    wanted: int,
    max_draws: int,
    margin: float,
    seed: int,
    batch: int = 64,
    abort_fn: Callable[[], bool] | None = None,
) -> RejectionResult:
    """Draw latents of `seed` in order until `wanted` match the (F,) 0/1 `target` or `max_draws` are used."""
    G.eval()
    C.eval()
    device = next(G.parameters()).device
    t = torch.as_tensor(np.asarray(target), dtype=torch.float32, device=device)[None]
    thr = threshold_logits(torch.as_tensor(np.asarray(thresholds), dtype=torch.float32, device=device))
    kept_z: list[Tensor] = []
    kept_p: list[Tensor] = []
    drawn = 0
    while drawn < max_draws and sum(len(z) for z in kept_z) < wanted:
        if abort_fn is not None and abort_fn():
            break
        count = min(batch, max_draws - drawn)
        z = latents(seed, drawn, count, G.cfg.z_dim).to(device)
        logits = classify(G, C, z)
        ok = reached(logits, t.expand(count, -1), thr, margin)
        kept_z.append(z[ok].cpu())
        kept_p.append(torch.sigmoid(logits[ok]).cpu())
        drawn += count
    z_all = torch.cat(kept_z)[:wanted] if kept_z else torch.zeros(0, G.cfg.z_dim)
    p_all = torch.cat(kept_p)[:wanted].numpy() if kept_p else np.zeros((0, len(target)))
    return RejectionResult(z_all, p_all, drawn)
