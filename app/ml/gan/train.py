"""The progressive-growing GAN training loop (Karras et al. 2018) with WGAN-GP (Gulrajani et al. 2017).

One critic step per generator step (n_critic = 1, as PGGAN), Adam(lr 1e-3, betas (0, 0.99)) for both
networks, an EMA generator (decay 0.999) for samples and the snapshot, bf16 autocast on CUDA only (the
gradient penalty always runs in float32, see loss.py). The "authors" preset (config.apply_preset) trains
as Segal et al.'s code: float32, global batch 4 x batch_sizes, minibatch-stddev over each 4-GPU share.
Adam's moments are reset at each new resolution (PGGAN's reset_opt_for_new_lod), since moments of the
previous stage's layers say little about the new ones; the current depth is part of the resume state,
so a resumed run resets at exactly the same step as an uninterrupted one.

Randomness flows from one seed through pure functions (data order, latent grid) or through one CPU noise
generator whose state is checkpointed, and every rank draws the same global batch of indices, latents and
mixing weights and keeps its slice. Hence a resume on CPU is bit-exact, and a DDP run follows the same
math as one process with the global batch (except minibatch-stddev, which groups within a GPU's batch;
with mbstd_group 0 and batch_gpus k, a group is one k-GPU share on any GPU count dividing k).

DDP (under torchrun): WORLD_SIZE/RANK/LOCAL_RANK from the environment, gloo on CPU, nccl on CUDA; G and
the critic loss are each wrapped once and DDP averages the gradients. The critic's three D evaluations
and the penalty's double backward run inside one wrapped module (loss.CriticLoss) because DDP expects one
forward per backward; the generator step calls the bare D with its weights frozen. Only rank 0 writes.

An optional measuring hook (monitor.MeasureFn, e.g. the domain Fréchet distance) runs on rank 0 at every
resume checkpoint and at the end, on a forked RNG, and its result becomes a metrics line.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from app.ml.gan import checkpoints, sampling
from app.ml.gan.config import GanConfig
from app.ml.gan.data import EpochSampler, ImageData
from app.ml.gan.loss import CriticLoss, g_loss
from app.ml.gan.monitor import MeasureFn, checkpoint_at, measure_line
from app.ml.gan.networks import Discriminator, Generator
from app.ml.gan.schedule import Phase, TrainConfig, phase_at, total_images
from app.ml.progress import Progress, ProgressFn

PROGRESS_SECONDS = 1.0  # progress_fn is called at least this often (and at every metrics line)


@dataclass(frozen=True, kw_only=True)
class TrainingProgress(Progress):
    """Images seen of the schedule's total, with the last metrics line and the phase's depth,
    resolution and fade-in alpha (`metrics`)."""

    metrics: dict[str, Any]


def _progress(seen: int, total: int, metrics: dict[str, Any]) -> TrainingProgress:
    note = f"{seen:,} / {total:,} images · {metrics['resolution']} px"
    if metrics["alpha"] < 1:
        note += f" (fade-in {metrics['alpha']:.0%})"
    return TrainingProgress(seen, total, note, metrics=metrics)


@dataclass
class TrainResult:
    """How a call to `train` ended."""

    run_dir: Path
    images_seen: int
    steps: int
    aborted: bool
    snapshot: Path | None  # run_dir/snapshot when training completed
    resume_path: Path | None  # the last resume state written (rank 0)
    metrics: dict[str, Any] = field(default_factory=dict)  # the last metrics.jsonl line


@dataclass
class _Process:
    """This process's place in the job: the world size, its rank and device (named apart from self.D)."""

    world: int
    rank: int
    device: torch.device
    created: bool  # we initialised the process group, so we tear it down
    control: Any = None  # gloo group for CPU control messages (abort flag) without a CUDA sync

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_dist(device: str | torch.device | None) -> _Process:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world == 1:
        return _Process(1, 0, dev, created=False)
    created = not dist.is_initialized()
    if created:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        bind = dev if dev.type == "cuda" else None  # binds NCCL's communicator to this rank's GPU
        dist.init_process_group(backend, rank=rank, world_size=world, device_id=bind)
    control = dist.new_group(backend="gloo") if dev.type == "cuda" else None
    return _Process(world, rank, dev, created, control)


def _as_data(data: ImageData | Path | Sequence[Path], cfg: GanConfig) -> ImageData:
    want = (cfg.resolution, cfg.image_channels, tuple(cfg.pixel_range))
    if not isinstance(data, ImageData):
        data = ImageData(data, resolution=want[0], channels=want[1], pixel_range=want[2])
    if (data.resolution, data.channels, tuple(data.pixel_range)) != want:
        raise ValueError("the data's resolution, channels or pixel range differ from the GanConfig")
    return data


def fade_reals(real: torch.Tensor, alpha: float) -> torch.Tensor:
    """Karras et al.'s process_reals: during a fade-in the reals fade as G's output does, from their 2x2
    averages (alpha 0, the previous resolution shown at this size) to themselves (alpha 1)."""
    if alpha >= 1.0:
        return real
    coarse = F.interpolate(F.avg_pool2d(real, 2), scale_factor=2, mode="nearest")  # (N, C, s, s)
    return coarse.lerp(real, alpha)


def _crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


class _Run:
    """The state of one training run and its step."""

    def __init__(
        self, cfg: GanConfig, train_cfg: TrainConfig, data: ImageData, run_dir: Path, proc: _Process
    ) -> None:
        self.cfg, self.train_cfg, self.data, self.run_dir, self.proc = cfg, train_cfg, data, run_dir, proc
        # the loop draws from its own streams; seeding the globals fixes network init and any library use
        torch.manual_seed(train_cfg.seed)
        np.random.seed(train_cfg.seed % 2**32)
        random.seed(train_cfg.seed)
        self.G = Generator(cfg).to(proc.device)
        self.D = Discriminator(cfg).to(proc.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.sampler = EpochSampler(len(data), seed=train_cfg.seed, hflip=train_cfg.hflip)
        # latents and penalty mixing weights: one CPU stream shared by all ranks (same global draws)
        self.noise = torch.Generator().manual_seed(train_cfg.seed + 1)
        self.images_seen = self.step = 0
        self.depth = -1  # the stage the optimisers belong to; -1 before the first step
        self.wall_s = 0.0
        self.opt_g, self.opt_d = self._adam(self.G), self._adam(self.D)
        self.use_bf16 = train_cfg.bf16 and proc.device.type == "cuda"
        self.sums: dict[str, torch.Tensor] = {}
        self.sum_steps = 0
        self.last_metrics: dict[str, Any] = {}

    def _adam(self, net: nn.Module) -> torch.optim.Adam:
        t = self.train_cfg
        return torch.optim.Adam(net.parameters(), lr=t.lr, betas=t.betas, eps=t.adam_eps)

    def wrap(self) -> None:
        """DDP-wrap G and the critic loss (after any resume, so every rank starts from the same weights)."""
        critic = CriticLoss(self.D, gp_lambda=self.train_cfg.gp_lambda, drift=self.train_cfg.drift)
        if self.proc.world == 1:
            self.G_train, self.critic = self.G, critic
            return
        # lower resolutions leave later blocks (and earlier toRGB/fromRGB) without gradients
        unused = self.cfg.depth_count > 1
        ids = [self.proc.device.index] if self.proc.device.type == "cuda" else None
        self.G_train = DDP(self.G, device_ids=ids, find_unused_parameters=unused)
        self.critic = DDP(critic, device_ids=ids, find_unused_parameters=unused)

    # ---- resume state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "gan_config": self.cfg.to_dict(),
            "train_config": self.train_cfg.to_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "counters": {"images_seen": self.images_seen, "step": self.step, "depth": self.depth}
            | {"wall_s": self.wall_s},
            "sampler": self.sampler.state_dict(),
            "noise": self.noise.get_state(),
            "rng": checkpoints.capture_rng(),
        }

    def restore(self, path: Path) -> None:
        s = checkpoints.load_resume(path)
        if GanConfig.from_dict(s["gan_config"]) != self.cfg:
            raise ValueError("the resume state was written for another network")
        for name in ("G", "D", "G_ema"):
            getattr(self, name).load_state_dict(s[name])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        c = s["counters"]
        self.images_seen, self.step, self.depth = int(c["images_seen"]), int(c["step"]), int(c["depth"])
        self.wall_s = float(c["wall_s"])
        self.sampler.load_state_dict(s["sampler"])
        self.noise.set_state(s["noise"])
        checkpoints.restore_rng(s["rng"])

    # ---- one step -----------------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, phase: Phase) -> None:
        """One critic step and one generator step on the next global batch."""
        if phase.depth != self.depth:
            if self.train_cfg.reset_optimizer and self.depth >= 0:
                self.opt_g, self.opt_d = self._adam(self.G), self._adam(self.D)
            self.depth = phase.depth
        dev, z_dim = self.proc.device, self.cfg.z_dim
        gb = self.train_cfg.global_batch(phase.depth, self.proc.world)
        b = gb // self.proc.world  # per GPU in use (_check_batches: it divides)
        if self.cfg.mbstd_group == 0:
            # one statistic per batch_sizes[depth] samples: a whole GPU's batch, or one share of the
            # batch_gpus-GPU run this global batch reproduces (the authors' DataParallel replicas)
            self.D.mbstd.group_size = phase.batch
        mine = slice(self.proc.rank * b, (self.proc.rank + 1) * b)  # this rank's share of the global batch
        idx, flips = self.sampler.next(gb)
        real = self.data.load(idx[mine], self.cfg.size_at(phase.depth), flips[mine]).to(dev)  # (b, C, s, s)
        if self.train_cfg.fade_reals and phase.depth > 0:
            real = fade_reals(real, phase.alpha)
        z_d = torch.randn(gb, z_dim, generator=self.noise)[mine].to(dev)  # (b, z_dim)
        eps = torch.rand(gb, generator=self.noise)[mine].to(dev)  # (b,) penalty mixing weights
        z_g = torch.randn(gb, z_dim, generator=self.noise)[mine].to(dev)  # (b, z_dim)

        with self._autocast():
            with torch.no_grad():
                fake = self.G(z_d, phase.depth, phase.alpha)  # bare G: no DDP forward without a backward
            loss_d, stats = self.critic(real, fake, eps, phase.depth, phase.alpha)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        self.D.requires_grad_(False)  # G's step needs no D gradients (and must not touch D's reducer)
        try:
            with self._autocast():
                fake = self.G_train(z_g, phase.depth, phase.alpha)
                loss_g = g_loss(self.D, fake, depth=phase.depth, alpha=phase.alpha)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
        finally:
            self.D.requires_grad_(True)
        self._update_ema()
        self.images_seen += gb
        self.step += 1
        for k, v in {"d_loss": loss_d.detach(), "g_loss": loss_g.detach(), **stats}.items():
            self.sums[k] = self.sums.get(k, 0) + v.float()  # stays on the device: no per-step sync
        self.sum_steps += 1

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.train_cfg.ema_decay
        if self.train_cfg.ema_rampup:
            beta = min(beta, (1 + self.step) / (10 + self.step))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # ---- outputs ------------------------------------------------------------------------------------
    def metrics_line(self, images_per_s: float) -> dict[str, Any]:
        """Average the losses since the last line over steps and ranks (every rank must call this)."""
        keys = sorted(self.sums)
        values = torch.stack([self.sums[k] for k in keys]) / max(self.sum_steps, 1)
        if self.proc.world > 1:
            dist.all_reduce(values)
            values /= self.proc.world
        phase = phase_at(self.images_seen, self.train_cfg)
        line = {"images_seen": self.images_seen, "kimg": self.images_seen / 1000, "step": self.step}
        line |= {"depth": phase.depth, "resolution": self.cfg.size_at(phase.depth), "alpha": phase.alpha}
        line |= {"batch": self.train_cfg.global_batch(phase.depth, self.proc.world)}
        line |= {"wall_s": self.wall_s, "images_per_s": images_per_s}
        line |= dict(zip(keys, values.tolist(), strict=True))
        self.sums, self.sum_steps, self.last_metrics = {}, 0, line
        return line

    def write_grid(self) -> None:
        phase, t = phase_at(self.images_seen, self.train_cfg), self.train_cfg
        img = sampling.grid(self.G_ema, seed=t.seed, n=t.grid_count, depth=phase.depth, alpha=phase.alpha)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        for name in (f"grid-{self.images_seen // 1000:06d}.png", "grid-latest.png"):
            checkpoints.atomic_write(self.run_dir / name, lambda f: f.write(buf.getvalue()))


def train(
    cfg: GanConfig,
    train_cfg: TrainConfig,
    data: ImageData | Path | Sequence[Path],
    run_dir: Path,
    *,
    resume: Path | None = None,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
    device: str | torch.device | None = None,
    measure_fn: MeasureFn | None = None,
) -> TrainResult:
    """Train a PGGAN from 4 px to cfg.resolution; resumable, abortable, DDP-aware under torchrun."""
    if train_cfg.resolution != cfg.resolution:
        raise ValueError("TrainConfig.resolution must equal GanConfig.resolution")
    data = _as_data(data, cfg)
    proc = _setup_dist(device)
    try:
        result = _train(cfg, train_cfg, data, Path(run_dir), proc, resume, progress_fn, abort_fn, measure_fn)
        if proc.created:
            # Every rank finishes its collectives before teardown; gloo otherwise can abort a peer
            # that is still shutting down ("terminate called without an active exception").
            dist.barrier()
        return result
    finally:
        if proc.created:
            dist.destroy_process_group()


def _train(
    cfg: GanConfig,
    train_cfg: TrainConfig,
    data: ImageData,
    run_dir: Path,
    proc: _Process,
    resume: Path | None,
    progress_fn: ProgressFn | None,
    abort_fn: Callable[[], bool] | None,
    measure_fn: MeasureFn | None = None,
) -> TrainResult:
    _check_batches(train_cfg, proc.world)
    run = _Run(cfg, train_cfg, data, run_dir, proc)
    if resume is not None:
        run.restore(Path(resume))
    run.wrap()
    total = total_images(train_cfg)
    resume_path: Path | None = None
    if proc.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name, conf in (("config.json", cfg.to_dict()), ("train_config.json", train_cfg.to_dict())):
            text = json.dumps(conf, indent=2, sort_keys=True) + "\n"
            checkpoints.atomic_write(run_dir / name, lambda f, t=text: f.write(t.encode()))
        _trim_metrics(run_dir / "metrics.jsonl", run.images_seen)
    bar = tqdm(
        total=total,
        initial=run.images_seen,
        unit="img",
        unit_scale=True,
        file=sys.stderr,
        disable=not (proc.main and sys.stderr.isatty()),
    )
    t_start = t_line = t_progress = time.monotonic()
    wall_at_start, images_at_line = run.wall_s, run.images_seen
    aborted = False

    def report(force: bool = False) -> None:
        nonlocal t_progress
        due = force or time.monotonic() - t_progress >= PROGRESS_SECONDS
        if progress_fn is not None and proc.main and due:
            phase = phase_at(run.images_seen, train_cfg)
            live = {"depth": phase.depth, "resolution": cfg.size_at(phase.depth), "alpha": phase.alpha}
            progress_fn(_progress(run.images_seen, total, {**run.last_metrics, **live}))
            t_progress = time.monotonic()

    while run.images_seen < total:
        if _agree(abort_fn, proc):
            aborted = True
            break
        before = run.images_seen
        run.train_step(phase_at(before, train_cfg))
        run.wall_s = wall_at_start + time.monotonic() - t_start
        bar.update(run.images_seen - before)
        done = run.images_seen >= total
        if _crossed(before, run.images_seen, train_cfg.metrics_every) or done:
            now = time.monotonic()
            line = run.metrics_line((run.images_seen - images_at_line) / max(now - t_line, 1e-9))
            t_line, images_at_line = now, run.images_seen
            if proc.main:
                with (run_dir / "metrics.jsonl").open("a") as f:
                    f.write(json.dumps(line) + "\n")
                bar.set_postfix(d=f"{line['d_loss']:.3g}", g=f"{line['g_loss']:.3g}", res=line["resolution"])
            report(force=True)
        if proc.main and (_crossed(before, run.images_seen, train_cfg.grid_every) or done):
            run.write_grid()
        if proc.main and _crossed(before, run.images_seen, train_cfg.checkpoint_every) and not done:
            # measured before the resume state: a crash in between re-measures after the resume
            _measure(run, measure_fn, final=False)
            resume_path = checkpoints.save_resume(run_dir, run.state())
        report()
    bar.close()

    snapshot = None
    if proc.main:
        resume_path = checkpoints.save_resume(run_dir, run.state())
        if not aborted:
            _measure(run, measure_fn, final=True)
            manifest = {"kind": "pggan-ema-generator", "steps": run.step, "world_size": proc.world}
            manifest |= {"train_config": train_cfg.to_dict()}
            snapshot = checkpoints.save_model(
                run.G_ema, run_dir / "snapshot", manifest=manifest, images_seen=run.images_seen
            )
        report(force=True)
    return TrainResult(run_dir, run.images_seen, run.step, aborted, snapshot, resume_path, run.last_metrics)


def _check_batches(train_cfg: TrainConfig, world: int) -> None:
    """Every stage's global batch must split evenly over the GPUs in use."""
    for depth in range(train_cfg.depth_count):
        gb = train_cfg.global_batch(depth, world)
        if gb % world:
            raise ValueError(
                f"the global batch of {gb} at {4 * 2**depth} px does not split over {world} GPUs "
                f"(batch_gpus {train_cfg.batch_gpus})"
            )


def _measure(run: _Run, measure_fn: MeasureFn | None, *, final: bool) -> None:
    """Run the measuring hook on the EMA generator and append its metrics line (rank 0 only)."""
    # Other ranks wait for rank 0 in their next collective meanwhile: with thousands of images per
    # measurement at high resolution, keep it under the process group's timeout (30 minutes by default).
    if measure_fn is None:
        return
    at = checkpoint_at(run.G_ema, run.data, run.cfg, run.train_cfg, run.images_seen, final=final)
    line = measure_line(measure_fn, at)
    with (run.run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")


def _agree(abort_fn: Callable[[], bool] | None, proc: _Process) -> bool:
    """Rank 0's abort_fn() decides for every rank (a CPU broadcast, so no CUDA sync)."""
    flag = bool(abort_fn()) if abort_fn is not None and proc.main else False
    if proc.world == 1:
        return flag
    t = torch.tensor([int(flag)])
    dist.broadcast(t, src=0, group=proc.control)
    return bool(t.item())


def _trim_metrics(path: Path, images_seen: int) -> None:
    """Drop metrics lines past the resume point (a crash may have logged steps that will rerun)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln)["images_seen"] <= images_seen]
    if len(keep) != len(lines):
        text = "".join(ln + "\n" for ln in keep)
        checkpoints.atomic_write(path, lambda f: f.write(text.encode()))
