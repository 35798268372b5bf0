"""Training hyper-parameters and the progressive-growing schedule (Karras et al. 2018, section 3).

The schedule is a pure function of the images-shown counter: `phase_at(images_seen, cfg)` says which
resolution is training, how far its fade-in has gone and the stage's batch. Nothing else about the stage
is stored, so a resumed run lands on exactly the phase an uninterrupted run would have. Defaults follow
the authors' code for Segal et al. 2021 (FACTS.md): 800k images per fade-in and per stable phase, 0.8M at
4 px, 2M at the last resolution, per-GPU batches 16,16,16,16,16,16,14,8,3. Defaults that the New-run form
shares (EMA decay, batch sizes) come from app.gan_defaults; presets are in app/ml/gan/config.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from app.gan_defaults import EMA_DECAY, SEGAL_BATCH_SIZES
from app.ml.jsonable import JsonConfig


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How a PGGAN is trained; stored as JSON with the run."""

    resolution: int = 1024  # target side length; must equal the network's GanConfig.resolution
    fade_images: int = 800_000  # images shown while a new resolution fades in (alpha 0 -> 1)
    stable_images: int = 800_000  # images shown at a resolution once fully faded in (all but the last)
    final_stable_images: int = 1_200_000  # stable images at the last resolution (authors: 2M with fade)
    batch_sizes: tuple[int, ...] = SEGAL_BATCH_SIZES  # per-GPU batch per stage (4 px first)
    # 0: the global batch is batch_sizes x the GPUs in use; k > 0: batch_sizes are per GPU of a k-GPU run,
    # so the global batch is k x batch_sizes on any GPU count that divides it (the authors: 4)
    batch_gpus: int = 0
    lr: float = 1e-3  # Adam learning rate for G and D (equalised learning rate makes one rate fit all)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas; beta1 = 0 as in PGGAN
    adam_eps: float = 1e-8  # Adam epsilon
    reset_optimizer: bool = True  # fresh Adam moments at each new resolution (PGGAN reset_opt_for_new_lod)
    ema_decay: float = EMA_DECAY  # per-step decay of the EMA generator used for samples and snapshots
    ema_rampup: bool = False  # decay min(ema_decay, (1 + step) / (10 + step)) so early EMA tracks G
    gp_lambda: float = 10.0  # WGAN-GP weight (Gulrajani et al. 2017)
    drift: float = 0.001  # PGGAN drift weight on E[D(real)^2]
    hflip: bool = False  # random horizontal flips; off because laterality matters in a chest film
    grid_every: int = 100_000  # images between sample grids (grid-<kimg>.png)
    grid_count: int = 16  # fixed latents in the grid (the authors kept 16)
    metrics_every: int = 10_000  # images between metrics.jsonl lines
    checkpoint_every: int = 100_000  # images between resume checkpoints
    seed: int = 0  # seeds network init, data order, latents and penalty mixing
    bf16: bool = True  # bfloat16 autocast on CUDA (the penalty stays float32); always off on CPU
    fade_reals: bool = False  # during a fade-in, blend reals with their 2x2 averages (Karras's process_reals)

    def __post_init__(self) -> None:
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError("resolution must be a power of two, at least 4")
        if len(self.batch_sizes) < self.depth_count:
            raise ValueError(f"{self.depth_count} batch sizes are needed for {self.resolution} px")
        if min(self.batch_sizes[: self.depth_count]) < 1:
            raise ValueError("batch sizes must be positive")
        if self.batch_gpus < 0:
            raise ValueError("batch_gpus must be >= 0")
        if self.fade_images < 0 or self.stable_images < 1 or self.final_stable_images < 1:
            raise ValueError("fade_images must be >= 0 and stable phases >= 1 image")
        for name in ("grid_every", "metrics_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")

    @property
    def depth_count(self) -> int:
        """Number of resolutions from 4 px to `resolution`."""
        return self.resolution.bit_length() - 2

    def global_batch(self, depth: int, world: int) -> int:
        """Images per step at `depth` over all `world` GPUs."""
        return self.batch_sizes[depth] * (self.batch_gpus or world)

    def stage_images(self, depth: int) -> tuple[int, int]:
        """(fade-in images, stable images) of the stage at `depth`; 4 px has no fade-in."""
        fade = 0 if depth == 0 else self.fade_images
        stable = self.final_stable_images if depth == self.depth_count - 1 else self.stable_images
        return fade, stable


class Phase(NamedTuple):
    """Where training stands after `images_seen` images."""

    depth: int  # resolution index: 4 * 2**depth px
    alpha: float  # fade-in of the newest block, 0..1 (1 at 4 px and in stable phases)
    batch: int  # batch_sizes[depth]: per GPU in use, or per GPU of the batch_gpus-GPU run
    stage_done: int  # images already shown in this stage (fade-in included)


def total_images(cfg: TrainConfig) -> int:
    """Images shown by a complete run."""
    return sum(sum(cfg.stage_images(d)) for d in range(cfg.depth_count))


def phase_at(images_seen: int, cfg: TrainConfig) -> Phase:
    """The stage and fade-in for the step that starts after `images_seen` images (pure)."""
    if images_seen < 0:
        raise ValueError("images_seen must be >= 0")
    start = 0
    last = cfg.depth_count - 1
    for depth in range(cfg.depth_count):
        fade, stable = cfg.stage_images(depth)
        if images_seen < start + fade + stable or depth == last:
            done = images_seen - start
            # alpha grows linearly with images over the fade-in, as PGGAN's lod does
            alpha = 1.0 if done >= fade else done / fade
            return Phase(depth, alpha, cfg.batch_sizes[depth], done)
        start += fade + stable
    raise AssertionError("unreachable")
