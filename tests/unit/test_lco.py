"""LCO on a tiny random generator and a hand-made two-finding classifier: reach rare single and paired
findings within the step limit, stop per sample, keep z in the typical shell; the rejection baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from app.ml.gan.config import GanConfig
from app.ml.gan.networks import Generator
from app.ml.gan.sampling import latents
from app.ml.lco import targets
from app.ml.lco.optimise import LcoConfig, classify, optimise, reached, threshold_logits, to_unit
from app.ml.lco.rejection import rejection_sample

THRESHOLDS = np.array([0.5, 0.5])


class Regions(nn.Module):
    """Finding A: a bright left half; finding B: a bright top half (logit = k * (mean - centre))."""

    def __init__(self, centre: list[float], k: float = 40.0) -> None:
        super().__init__()
        self.register_buffer("centre", torch.tensor(centre))
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        left = x[..., : w // 2].mean(dim=(1, 2, 3))
        top = x[..., : h // 2, :].mean(dim=(1, 2, 3))
        return self.k * (torch.stack([left, top], dim=1) - self.centre)


@pytest.fixture(scope="module")
def tiny():
    """G at 16 px (z 32) and C whose findings each occur in ~2 % of random latents."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G = Generator(GanConfig(z_dim=32, resolution=16, channels=(32, 32, 32))).eval()
    with torch.no_grad():
        img = to_unit(G(latents(99, 0, 2000, 32)), G.cfg.pixel_range)
    left, top = img[..., :8].mean(dim=(1, 2, 3)), img[..., :8, :].mean(dim=(1, 2, 3))
    C = Regions([float(left.quantile(0.98)), float(top.quantile(0.98))])
    return G, C


def rate(G, C, target: list[int], n: int = 2000) -> float:
    """How often random latents already meet `target` (the rejection sampler's acceptance rate)."""
    with torch.no_grad():
        logits = classify(G, C, latents(7, 0, n, G.cfg.z_dim))
    t = torch.tensor([target] * n, dtype=torch.float32)
    return float(
        reached(logits, t, threshold_logits(torch.tensor(THRESHOLDS, dtype=torch.float32)), 0.5)
        .float()
        .mean()
    )


def test_reaches_a_rare_finding_and_a_rarer_pair_within_the_step_limit(tiny):
    G, C = tiny
    assert rate(G, C, [1, 0]) < 0.03 and rate(G, C, [1, 1]) < 0.01  # rare under plain sampling
    cfg = LcoConfig(steps=150, batch=8, restarts=0)
    goal = targets.explicit([["A"], ["A", "B"]], ["A", "B"], 8)
    res = optimise(G, C, goal, THRESHOLDS, cfg, seed=0)
    assert res.success.all(), res.steps
    assert (res.steps <= cfg.steps).all()
    # The recorded latents really give the wanted findings.
    with torch.no_grad():
        p = torch.sigmoid(classify(G, C, res.z)).numpy()
    assert ((p >= 0.5) == goal.astype(bool)).all()
    np.testing.assert_allclose(p, res.probs, atol=1e-5)


def test_early_stopping_is_per_sample(tiny):
    G, C = tiny
    goal = np.array([[0, 0]] * 4 + [[1, 1]] * 4, dtype=np.float32)  # "no finding" is met at once
    res = optimise(G, C, goal, THRESHOLDS, LcoConfig(steps=150, batch=8, restarts=0), seed=1)
    assert res.success.all()
    assert (res.steps[:4] <= 1).all() and (res.steps[4:] > res.steps[:4].max()).all()
    with torch.no_grad():  # the easy samples' latents were kept from their own stopping step
        np.testing.assert_allclose(torch.sigmoid(classify(G, C, res.z[:4])).numpy(), res.probs[:4], atol=1e-5)


def test_the_prior_keeps_z_in_the_typical_shell(tiny):
    G, C = tiny
    d = G.cfg.z_dim
    goal = np.array([[1, 1]] * 8, dtype=np.float32)

    def shell(**prior) -> np.ndarray:
        cfg = LcoConfig(steps=60, lr=0.2, batch=8, restarts=0, **prior)
        return optimise(G, C, goal, THRESHOLDS, cfg, seed=2).z.pow(2).sum(dim=1).numpy() / d

    np.testing.assert_allclose(shell(prior="sphere"), 1.0, atol=1e-4)
    # G pixel-normalises z, so the BCE gradient is orthogonal to z and every unconstrained step
    # lengthens it; the penalty holds ||z||^2 / d near 1, where nothing holds it without.
    free = np.abs(shell(prior="penalty", prior_weight=0.0) - 1)
    held = np.abs(shell(prior="penalty", prior_weight=5.0) - 1)
    assert held.mean() < free.mean() / 2 and held.max() < 0.35, (held, free)


def test_failures_restart_from_new_latents(tiny):
    G, C = tiny
    res = optimise(
        G, C, np.array([[1, 1]] * 3, dtype=np.float32), THRESHOLDS, LcoConfig(steps=0, restarts=2), seed=3
    )
    assert not res.success.any() and (res.attempts == 3).all()


def test_rejection_baseline_uses_the_same_acceptance_rule(tiny):
    G, C = tiny
    found = rejection_sample(G, C, np.array([0, 0]), THRESHOLDS, wanted=10, max_draws=500, margin=0.5, seed=4)
    assert len(found.z) == 10 and found.drawn <= 500
    assert (found.probs < 0.5).all()
    rare = rejection_sample(G, C, np.array([1, 1]), THRESHOLDS, wanted=50, max_draws=256, margin=0.5, seed=4)
    assert rare.drawn == 256 and len(rare.z) < 50


def test_target_modes():
    f = ["A", "B", "C"]
    assert targets.explicit([["A", "C"], []], f, 3).tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="not among"):
        targets.explicit([["Z"]], f, 1)
    assert targets.balanced(f, 6).sum(axis=0).tolist() == [2, 2, 2]
    rows = np.array([[1, 1, 0], [0, 0, 0]], dtype=np.float32)
    drawn = targets.empirical(rows, 200, seed=0)
    assert {tuple(r) for r in drawn} == {(1, 1, 0), (0, 0, 0)} and 60 < drawn[:, 0].sum() < 140


@pytest.mark.parametrize("thresholds", [[0.9995, 0.0004], [0.5, 0.5]])
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_success_means_the_labelling_rule_holds_even_for_extreme_thresholds(thresholds, margin):
    """Reached implies p >= threshold where the target has the finding and p < threshold where not."""
    thr = torch.tensor(thresholds)
    p = torch.rand(20000, 2, generator=torch.Generator().manual_seed(0)) ** 4  # many near 0 and 1
    p = torch.cat([p, 1 - p, thr.expand(4, -1)])  # and exactly on the thresholds
    logits = torch.logit(p.clamp(1e-7, 1 - 1e-7))
    for target in ([1, 0], [0, 1], [1, 1], [0, 0]):
        t = torch.tensor([target], dtype=torch.float32).expand(len(p), -1)
        ok = reached(logits, t, threshold_logits(thr), margin)
        agree = torch.where(t.bool(), p >= thr, p < thr).all(dim=1)
        assert not (ok & ~agree).any()


def test_screening_starts_from_the_candidate_nearest_the_target(tiny):
    G, C = tiny
    goal = np.array([[1, 1]] * 8, dtype=np.float32)

    def loss(z: torch.Tensor, t: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            logits = classify(G, C, z)
        target = torch.from_numpy(t).expand_as(logits)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(1)

    # steps=0: the result is the start itself, so its loss is the screening's choice.
    plain = optimise(G, C, goal, THRESHOLDS, LcoConfig(steps=0, restarts=0, screen=1), seed=4)
    screened = optimise(G, C, goal, THRESHOLDS, LcoConfig(steps=0, restarts=0, screen=16), seed=4)
    for i in range(len(goal)):  # target i screens latents 16 i .. 16 i + 15 and keeps the nearest
        candidates = loss(latents(4, 16 * i, 16, G.cfg.z_dim), goal[i])
        assert loss(screened.z[i : i + 1], goal[i]).item() == pytest.approx(candidates.min().item(), abs=1e-5)
    assert loss(screened.z, goal[0]).mean() < loss(plain.z, goal[0]).mean()
    # Without screening, target i starts from latent i (the sphere projection leaves a direction alone).
    start = latents(4, 3, 1, G.cfg.z_dim)[0]
    torch.testing.assert_close(plain.z[3] / plain.z[3].norm(), start / start.norm(), rtol=0, atol=1e-5)


def test_progress_counts_films_settled_and_ends_at_every_target(tiny):
    G, C = tiny
    reports = []
    goal = np.array([[1, 1]] * 3 + [[0, 0]] * 5, dtype=np.float32)
    cfg = LcoConfig(steps=3, batch=4, restarts=1)
    res = optimise(G, C, goal, THRESHOLDS, cfg, seed=3, progress_fn=reports.append)
    settled = [r.done for r in reports]
    # Settled never goes back, and ends at every target, reached or given up on; reached is reported apart.
    assert settled == sorted(settled) and settled[-1] == len(goal)
    assert reports[-1].reached == int(res.success.sum()) < len(goal)
    assert all(r.reached <= r.done for r in reports)
    # A report per step of each batch, so a bar moves before the first batch ends.
    first_batch = [r.step for r in reports if (r.attempt, r.batch) == (0, 1)]
    assert first_batch[:2] == [0, 1] and {r.attempt for r in reports} == {0, 1}
