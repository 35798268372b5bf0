"""Latent class optimisation (Segal et al., SN Computer Science 2021).

G and a multi-label classifier C are frozen; a batch of latents z is optimised with Adam so that
sigmoid(C(G(z))) matches target label vectors. The paper publishes neither loss nor schedule; ours:

- loss: BCE between C's logits and the 0/1 target, averaged over findings;
- prior: PGGAN pixel-normalises z at its input, so G(z) depends on z's direction only and every point of
  the sphere ||z|| = sqrt(d) is as typical under N(0, I) as any other (the distribution is rotation
  invariant and concentrates on that shell). Projecting z back onto the sphere after each step ("sphere")
  therefore keeps z typical without pulling it anywhere, and keeps Adam's step size fixed relative to
  ||z||. For generators that do not normalise z, "penalty" adds w * (||z||^2 / d - 1)^2 instead;
- success: every finding's logit on its side of the threshold's logit by `margin` (logits, so that a
  threshold near 0 or 1 keeps a meaningful margin; with margin 0 it is exactly the labelling rule
  p >= threshold for present, p < threshold for absent);
- early stop per sample: a sample's latent and probabilities are recorded at its first success, and the
  batch stops when all have succeeded or at the step limit;
- restarts: failures begin again from fresh latents, up to `restarts` more times; a sample that never
  succeeds keeps the attempt whose final loss was lowest;
- screening: each attempt may start from the best of `screen` random latents (lowest loss to the target,
  one forward pass each without gradients, a third of a step's cost). A rare combination's near misses
  are far more common than its hits, and starting from one saves most of the climb.

Everything runs on G's device (a GPU when the worker has one); results come back on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.gan.sampling import latents
from app.ml.jsonable import JsonConfig
from app.ml.progress import Progress, ProgressFn


@dataclass(frozen=True)
class LcoConfig(JsonConfig):
    """How latents are optimised."""

    steps: int = 200  # Adam steps per attempt (the step limit)
    lr: float = 0.05  # Adam learning rate on z
    prior: str = "sphere"  # "sphere" (project onto ||z|| = sqrt(d)) or "penalty" (w * (||z||^2/d - 1)^2)
    prior_weight: float = 0.1  # w of the penalty prior
    margin: float = 0.5  # each logit must clear its threshold's logit by this much to count as reached
    restarts: int = 2  # further attempts from new latents for samples that failed
    batch: int = 16  # latents optimised together
    screen: int = 1  # candidate latents drawn per target and attempt; the one closest to it starts


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


def threshold_logits(thresholds: Tensor) -> Tensor:
    """Probability thresholds (F,) as logits, finite even for 0 or 1."""
    return torch.logit(thresholds.clamp(1e-6, 1 - 1e-6))


def reached(logits: Tensor, targets: Tensor, thr_logits: Tensor, margin: float) -> Tensor:
    """(N,) True where every finding's logit is on the target's side of its threshold by `margin`."""
    present = logits >= thr_logits + margin
    absent = logits < thr_logits - margin
    return torch.where(targets.bool(), present, absent).all(dim=1)


def classify(G: nn.Module, C: nn.Module, z: Tensor) -> Tensor:
    """(N, d) latents -> (N, F) logits of C on G's images."""
    return C(to_unit(G(z), G.cfg.pixel_range))


def _project(z: Tensor) -> Tensor:
    return z * (z.shape[1] ** 0.5 / z.norm(dim=1, keepdim=True).clamp(min=1e-8))


@dataclass(frozen=True, kw_only=True)
class LcoProgress(Progress):
    """Where `optimise` is, reported at every step. `done` counts films settled (targets reached, plus
    those given up on in the last pass), so a bar ends at `total`."""

    reached: int
    attempt: int  # the pass, from 0; pass k > 0 retries the failures of pass k - 1
    passes: int
    batch: int  # within the pass, from 1
    batches: int
    step: int  # within the batch's attempt, from 0
    steps: int


def _attempt(
    G: nn.Module,
    C: nn.Module,
    z0: Tensor,
    t: Tensor,
    thr: Tensor,
    cfg: LcoConfig,
    abort,
    on_step: Callable[[int], None] | None = None,
):
    """One attempt for a batch: (z at success or at the end, probs, success, steps taken) per sample.

    Each step runs G and C on the samples still searching only, so a batch costs what its unfinished
    samples cost (G and C work per sample: no layer mixes samples, and C is in eval mode).
    """
    d = z0.shape[1]
    z = (_project(z0) if cfg.prior == "sphere" else z0).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.lr)
    n = z.shape[0]
    best_z, best_p = z.detach().clone(), torch.zeros_like(t)
    final_loss = torch.zeros(n, device=z.device)
    ok = torch.zeros(n, dtype=torch.bool, device=z.device)
    steps = torch.full((n,), cfg.steps, dtype=torch.long, device=z.device)
    for step in range(cfg.steps + 1):
        if on_step is not None:
            on_step(step)
        active = (~ok).nonzero().squeeze(1)  # (A,) samples still searching
        za = z[active]
        logits = classify(G, C, za)  # (A, F)
        p = torch.sigmoid(logits.detach())
        newly = reached(logits.detach(), t[active], thr, cfg.margin)
        done = active[newly]
        best_z[done], best_p[done], steps[done] = za.detach()[newly], p[newly], step
        ok[done] = True
        last = step == cfg.steps or bool(ok.all()) or (abort is not None and abort())
        loss = F.binary_cross_entropy_with_logits(logits, t[active], reduction="none").mean(dim=1)
        if last:
            still = active[~newly]  # record the unfinished ones as they end
            best_z[still], best_p[still] = za.detach()[~newly], p[~newly]
            final_loss[still] = loss.detach()[~newly]
            break
        if cfg.prior == "penalty":
            loss = loss + cfg.prior_weight * ((za.pow(2).sum(dim=1) / d) - 1).pow(2)
        opt.zero_grad(set_to_none=True)
        loss[~newly].sum().backward()  # just-finished samples are recorded; their z no longer matters
        opt.step()
        if cfg.prior == "sphere":
            with torch.no_grad():
                z.copy_(_project(z))
    return best_z, best_p, ok, steps, final_loss


def _starts(
    G: nn.Module,
    C: nn.Module,
    idx: np.ndarray,
    attempt: int,
    n: int,
    t_all: Tensor,
    *,
    seed: int,
    screen: int,
) -> Tensor:
    """(B, d) starting latents for targets `idx`: of `screen` candidates each, the one nearest its target.

    Candidate k of target i in attempt a is latent (a * n + i) * screen + k of `seed`, so every start is
    fixed whatever the batching (with screen 1 it is latent a * n + i).
    """
    device, d = t_all.device, G.cfg.z_dim
    cands = torch.stack([latents(seed, (attempt * n + int(i)) * screen, screen, d) for i in idx]).to(
        device
    )  # (B, screen, d)
    if screen == 1:
        return cands[:, 0]
    flat, goal = cands.flatten(0, 1), t_all[idx].repeat_interleave(screen, dim=0)  # (B * screen, ...)
    with torch.no_grad():  # a batch's worth at a time: B * screen images at once could exhaust memory
        loss = torch.cat(
            [
                F.binary_cross_entropy_with_logits(
                    classify(G, C, flat[k : k + len(idx)]), goal[k : k + len(idx)], reduction="none"
                ).mean(dim=1)
                for k in range(0, len(flat), len(idx))
            ]
        ).view(len(idx), screen)  # (B, screen)
    return cands[torch.arange(len(idx), device=device), loss.argmin(dim=1)]


def optimise(
    G: nn.Module,
    C: nn.Module,
    targets: np.ndarray,
    thresholds: np.ndarray,
    cfg: LcoConfig,
    *,
    seed: int,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
) -> LcoResult:
    """Optimise one latent per row of (N, F) 0/1 `targets`; see the module docstring."""
    G.eval().requires_grad_(False)
    C.eval().requires_grad_(False)
    device = next(G.parameters()).device
    n, d = len(targets), G.cfg.z_dim
    t_all = torch.as_tensor(np.asarray(targets), dtype=torch.float32, device=device)
    thr = threshold_logits(torch.as_tensor(np.asarray(thresholds), dtype=torch.float32, device=device))
    z_out, p_out = torch.zeros(n, d), np.zeros(targets.shape, dtype=np.float64)
    success, steps, attempts = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, np.int64)
    best_loss = np.full(n, np.inf)
    todo = np.arange(n)
    passes = cfg.restarts + 1

    def report(step: int, where: tuple[int, int, int, int], settled: int | None) -> None:
        """Settled is None before the last pass: only reached targets are settled then."""
        if progress_fn is not None:
            reached = int(success.sum())
            done = reached if settled is None else settled
            attempt, passes, batch, batches = where
            note = (
                f"{done:,} / {n:,} films settled ({reached:,} targets reached), "
                f"pass {attempt + 1}/{passes}, batch {batch}/{batches}"
            )
            progress_fn(
                LcoProgress(
                    done,
                    n,
                    note,
                    reached=reached,
                    attempt=attempt,
                    passes=passes,
                    batch=batch,
                    batches=batches,
                    step=step,
                    steps=cfg.steps,
                )
            )

    for attempt in range(passes):
        batches = -(-len(todo) // cfg.batch)
        for batch, start in enumerate(range(0, len(todo), cfg.batch), start=1):
            if abort_fn is not None and abort_fn():
                return LcoResult(z_out, p_out, success, steps, attempts)
            idx = todo[start : start + cfg.batch]
            where = (attempt, passes, batch, batches)
            # In the last pass every target tried is settled: no later pass retries it.
            settled = n - len(todo) + start if attempt == passes - 1 else None
            z0 = _starts(G, C, idx, attempt, n, t_all, seed=seed, screen=cfg.screen)
            on_step = partial(report, where=where, settled=settled)
            z, p, ok, used, loss = _attempt(G, C, z0, t_all[idx], thr, cfg, abort_fn, on_step)
            ok_np, loss_np = ok.cpu().numpy(), loss.cpu().numpy()
            # Successes are kept; a failure replaces an earlier failure only if it came closer.
            keep = ok_np | (loss_np < best_loss[idx])
            z_out[idx[keep]], p_out[idx[keep]] = z.cpu()[keep], p.cpu().numpy()[keep]
            best_loss[idx[keep]] = np.where(ok_np[keep], -np.inf, loss_np[keep])
            success[idx], steps[idx], attempts[idx] = ok_np, steps[idx] + used.cpu().numpy(), attempt + 1
            report(int(used.max()), where, None if settled is None else settled + len(idx))
        todo = np.flatnonzero(~success)
        if len(todo) == 0:
            break
    return LcoResult(z_out, p_out, success, steps, attempts)
