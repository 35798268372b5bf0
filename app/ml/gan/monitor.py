"""Image quality over training: the Fréchet distance (Heusel et al. 2017) of the EMA generator at each
checkpoint, in the features of the registered Inception (FID) or of the project's own chest X-ray
classifier (the domain distance, which needs no outside weights).

The training loop hands a `Checkpoint` to a measuring hook (`MeasureFn`) on rank 0 and writes what the
hook returns as one metrics.jsonl line, marked by its "fd" key. `FrechetMonitor` is such a hook: it
compares n generates of a fixed latent seed with n training films, both at the resolution being trained
(so a 4 px stage is judged against 4 px films, as its critic sees them) and both quantised to 8 bits like
stored films; the extractor resizes its inputs itself. Up to 2n training films are drawn and split into
halves A and B of m = min(n, films // 2): the generator's m samples are measured against A, and the
baseline is B against A, so both distances carry the same small-sample bias (a baseline of two n/2 halves
beside a distance at n reads about 0.5 for a perfect generator). A's features and the baseline are
computed once per resolution.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from app.ml.gan import sampling
from app.ml.gan.config import GanConfig
from app.ml.gan.data import ImageData
from app.ml.gan.schedule import TrainConfig, phase_at, total_images
from app.ml.metrics.frechet import fid


@dataclass(frozen=True)
class Checkpoint:
    """What a measuring hook sees: the EMA generator at one moment of training."""

    G_ema: nn.Module
    data: ImageData
    images_seen: int
    total: int  # images of the whole run
    depth: int  # the stage of the last step trained
    alpha: float  # its fade-in
    resolution: int  # 4 * 2**depth px
    stage_start: int  # images seen when this resolution's fade-in began
    final: bool  # the end of training (else a resume checkpoint)


MeasureFn = Callable[[Checkpoint], dict[str, Any]]


def checkpoint_at(
    G_ema: nn.Module, data: ImageData, cfg: GanConfig, tcfg: TrainConfig, images_seen: int, *, final: bool
) -> Checkpoint:
    """The checkpoint after `images_seen` images, described by the stage its last step trained."""
    # The phase of the step just taken: at a stage boundary phase_at(images_seen) would already name the
    # next resolution at alpha 0, whose output is only the previous one upsampled.
    ph = phase_at(max(images_seen - 1, 0), tcfg)
    start = max(images_seen - 1, 0) - ph.stage_done
    return Checkpoint(
        G_ema, data, images_seen, total_images(tcfg), ph.depth, ph.alpha, cfg.size_at(ph.depth), start, final
    )


def measure_line(fn: MeasureFn, at: Checkpoint) -> dict[str, Any]:
    """The metrics line of one measurement; the hook runs on a forked RNG so training draws stay the same."""
    device = next(at.G_ema.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        result = fn(at)
    line = {"images_seen": at.images_seen, "kimg": at.images_seen / 1000, "resolution": at.resolution}
    line |= {"depth": at.depth, "alpha": at.alpha, "stage_start": at.stage_start, "final": at.final}
    return line | result


FeaturesFn = Callable[[list[np.ndarray]], np.ndarray]  # B films (H, W) uint8 -> (B, D) features
CHUNK = 256  # films handed to the extractor at a time


class FrechetMonitor:
    """Fréchet distance of the EMA generator's samples to the training films, with the baseline."""

    def __init__(self, features: FeaturesFn, *, n: int, seed: int = 0, batch: int = 16) -> None:
        if n < 4:
            raise ValueError("the Fréchet distance needs at least 4 images (2 per baseline half)")
        self.features, self.n, self.seed, self.batch = features, n, seed, batch
        self.real: dict[int, tuple[np.ndarray, float | None]] = {}  # resolution -> (half A, baseline)

    def real_indices(self, size: int) -> np.ndarray:
        """The training films drawn: a seeded random 2n (all when fewer), halves A then B."""
        take = min(size, 2 * self.n)
        return np.random.default_rng(self.seed).permutation(size)[:take]

    def _real_films(self, data: ImageData, side: int) -> Iterator[np.ndarray]:
        idx = self.real_indices(len(data))
        for start in range(0, len(idx), self.batch):
            x = data.load(idx[start : start + self.batch], side)  # (b, C, side, side) in pixel_range
            yield from sampling.to_uint8(x, data.pixel_range)  # (side, side) uint8 each

    def _features_of(self, films: Iterable[np.ndarray]) -> np.ndarray:
        """(N, D) features of a stream of films, CHUNK at a time so memory stays bounded."""
        out, chunk = [], []
        for film in films:
            chunk.append(film)
            if len(chunk) == CHUNK:
                out.append(np.asarray(self.features(chunk)))
                chunk = []
        if chunk:
            out.append(np.asarray(self.features(chunk)))
        return np.concatenate(out)

    def _real_features(self, data: ImageData, side: int) -> tuple[np.ndarray, float | None]:
        """Half A's (m, D) features and the baseline fid(B, A), or (all films, None) below 4 films."""
        if side not in self.real:
            features = self._features_of(self._real_films(data, side))  # (min(N, 2n), D)
            m = min(self.n, len(features) // 2)
            if m >= 2:
                self.real[side] = (features[:m], fid(features[m : 2 * m], features[:m]))
            else:
                self.real[side] = (features, None)
        return self.real[side]

    def __call__(self, at: Checkpoint) -> dict[str, Any]:
        """{"fd", "baseline", "n"} at the checkpoint's resolution, both distances at n images per side."""
        device = next(at.G_ema.parameters()).device
        real, baseline = self._real_features(at.data, at.resolution)
        films = (
            img
            for _, img in sampling.sample(
                at.G_ema,
                len(real),
                seed=self.seed,
                batch=self.batch,
                device=device,
                depth=at.depth,
                alpha=at.alpha,
            )
        )
        generated = self._features_of(films)  # (n, D)
        return {
            "fd": fid(real, generated),
            "baseline": baseline,
            "n": len(real),
        }


def fd_history(lines: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The measurement lines among metrics lines, one per images_seen (the last written), in order."""
    by_seen = {int(m["images_seen"]): m for m in lines if "fd" in m and "images_seen" in m}
    return [by_seen[k] for k in sorted(by_seen)]


def read_fd_history(path: Path) -> list[dict[str, Any]]:
    """`fd_history` of a metrics.jsonl file (empty when it does not exist)."""
    if not Path(path).exists():
        return []
    return fd_history(json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip())
