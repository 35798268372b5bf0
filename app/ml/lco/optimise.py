"""Latent class optimisation (Segal et al., SN Computer Science 2021).

G and a multi-label classifier C are frozen; a batch of latents z is optimised with Adam so that
sigmoid(C(G(z))) matches target label vectors. The paper publishes neither loss nor schedule; ours:

- loss: BCE between C's logits and the 0/1 target, averaged over findings;
- prior: PGGAN pixel-normalises z at its input, so G(z) depends on z's direction only and every point of
  the sphere ||z|| = sqrt(d) is as typical under N(0, I) as any other (the distribution is rotation
  invariant and concentrates on that shell). Projecting z back onto the sphere after each step ("sphere")
  therefore keeps z typical without pulling it anywhere, and keeps Adam's step size fixed relative to
  ||z||. For generators that do not normalise z, "penalty" adds w * (||z||^2 / d - 1)^2 instead;
- success: every finding on its side of the classifier's threshold by `margin` (in probability);
- early stop per sample: a sample's latent and probabilities are recorded at its first success, and the
  batch stops when all have succeeded or at the step limit;
- restarts: failures begin again from fresh latents, up to `restarts` more times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.gan.sampling import latents


@dataclass(frozen=True)
class LcoConfig:
    """How latents are optimised."""

    steps: int = 200  # Adam steps per attempt (the step limit)
    lr: float = 0.05  # Adam learning rate on z
    prior: str = "sphere"  # "sphere" (project onto ||z|| = sqrt(d)) or "penalty" (w * (||z||^2/d - 1)^2)
    prior_weight: float = 0.1  # w of the penalty prior
    margin: float = 0.05  # each probability must clear its threshold by this much to count as reached
    restarts: int = 2  # further attempts from new latents for samples that failed
    batch: int = 16  # latents optimised together

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return asdict(self)


@dataclass
class LcoResult:
    """Per target: the recorded latent, C's probabilities for it, success, steps and attempts used."""

    z: Tensor  # (N, d)
    probs: np.ndarray  # (N, F)
    success: np.ndarray  # (N,) bool
    steps: np.ndarray  # (N,) steps summed over attempts
    attempts: np.ndarray  # (N,) 1 + restarts used


def to_unit(x: Tensor, pixel_range: tuple[float, float]) -> Tensor:
    """Generator output in its pixel range -> [0, 1], as the renderer maps it to 0..255."""
    lo, hi = pixel_range
    return ((x - lo) / (hi - lo)).clamp(0, 1)


def reached(probs: Tensor, targets: Tensor, thresholds: Tensor, margin: float) -> Tensor:
    """(N,) True where every finding is on the target's side of its threshold by `margin`."""
    hi = probs >= (thresholds + margin).clamp(max=0.999)
    lo = probs <= (thresholds - margin).clamp(min=0.001)
    return torch.where(targets.bool(), hi, lo).all(dim=1)


def classify(G: nn.Module, C: nn.Module, z: Tensor) -> Tensor:
    """(N, d) latents -> (N, F) logits of C on G's images."""
    return C(to_unit(G(z), G.cfg.pixel_range))


def _project(z: Tensor) -> Tensor:
    return z * (z.shape[1] ** 0.5 / z.norm(dim=1, keepdim=True).clamp(min=1e-8))


def _attempt(G: nn.Module, C: nn.Module, z0: Tensor, t: Tensor, thr: Tensor, cfg: LcoConfig, abort):
    """One attempt for a batch: (z at success or at the end, probs, success, steps taken) per sample."""
    d = z0.shape[1]
    z = (_project(z0) if cfg.prior == "sphere" else z0).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    n = z.shape[0]
    best_z, best_p = z.detach().clone(), torch.zeros_like(t)
    ok = torch.zeros(n, dtype=torch.bool)
    steps = torch.full((n,), cfg.steps, dtype=torch.long)
    for step in range(cfg.steps + 1):
        logits = classify(G, C, z)
        p = torch.sigmoid(logits.detach())
        newly = reached(p, t, thr, cfg.margin) & ~ok
        best_z[newly], best_p[newly], steps[newly] = z.detach()[newly], p[newly], step
        ok |= newly
        if ok.all() or step == cfg.steps or (abort is not None and abort()):
            break
        loss = F.binary_cross_entropy_with_logits(logits, t, reduction="none").mean(dim=1)
        if cfg.prior == "penalty":
            loss = loss + cfg.prior_weight * ((z.pow(2).sum(dim=1) / d) - 1).pow(2)
        opt.zero_grad(set_to_none=True)
        loss[~ok].sum().backward()  # finished samples are recorded already; their z no longer matters
        opt.step()
        if cfg.prior == "sphere":
            with torch.no_grad():
                z.copy_(_project(z))
    still = ~ok
    best_z[still], best_p[still] = z.detach()[still], torch.sigmoid(classify(G, C, z).detach())[still]
    return best_z, best_p, ok, steps


def optimise(
    G: nn.Module,
    C: nn.Module,
    targets: np.ndarray,
    thresholds: np.ndarray,
    cfg: LcoConfig,
    *,
    seed: int,
    progress_fn: Callable[[int, int], None] | None = None,
    abort_fn: Callable[[], bool] | None = None,
) -> LcoResult:
    """Optimise one latent per row of (N, F) 0/1 `targets`; see the module docstring."""
    G.eval().requires_grad_(False)
    C.eval().requires_grad_(False)
    n, d = len(targets), G.cfg.z_dim
    t_all = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    thr = torch.as_tensor(np.asarray(thresholds), dtype=torch.float32)
    z_out, p_out = torch.zeros(n, d), np.zeros(targets.shape, dtype=np.float64)
    success, steps, attempts = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, np.int64)
    todo = np.arange(n)
    for attempt in range(cfg.restarts + 1):
        for start in range(0, len(todo), cfg.batch):
            if abort_fn is not None and abort_fn():
                return LcoResult(z_out, p_out, success, steps, attempts)
            idx = todo[start : start + cfg.batch]
            # Latent of target i, attempt a: index a * n + i of `seed`, fixed whatever the batching.
            z0 = torch.stack([latents(seed, attempt * n + int(i), 1, d)[0] for i in idx])
            z, p, ok, used = _attempt(G, C, z0, t_all[idx], thr, cfg, abort_fn)
            z_out[idx], p_out[idx] = z, p.numpy()
            success[idx], steps[idx], attempts[idx] = ok.numpy(), steps[idx] + used.numpy(), attempt + 1
            if progress_fn is not None:
                progress_fn(int(success.sum()), n)
        todo = np.flatnonzero(~success)
        if len(todo) == 0:
            break
    return LcoResult(z_out, p_out, success, steps, attempts)
