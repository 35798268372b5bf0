"""Training images for progressive growing (Karras et al. 2018) and a deterministic batch sampler.

Each file is decoded once to 8-bit grey at the target resolution (centre-cropped to a square, Lanczos
resize when its size differs) and, when the whole set fits the cache budget, kept in memory because every
stage revisits the data. A stage's images are box-filtered from that full-resolution array: for the
power-of-two factors used here an area resize is exactly PGGAN's repeated 2 x 2 averaging, so low
resolutions are antialiased. No horizontal flip unless asked for: laterality matters in a chest film.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _to_square_grey(img: Image.Image, resolution: int) -> np.ndarray:
    """(resolution, resolution) uint8 grey from any PIL image."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit PNGs: keep the top 8 bits rather than letting convert("L") clip at 255
        arr = np.asarray(img, dtype=np.float64) / 257.0
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    img = img.convert("L")
    w, h = img.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


class ImageData:
    """A set of grey images served as (N, C, s, s) float batches in the generator's pixel range."""

    def __init__(
        self,
        source: Path | Sequence[Path],
        *,
        resolution: int,
        channels: int = 1,
        pixel_range: tuple[float, float] = (-1.0, 1.0),
        cache_bytes: int = 1 << 30,
        workers: int = 4,
    ) -> None:
        if isinstance(source, (str, Path)):
            folder = Path(source)
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files = [Path(p) for p in source]
        if not files:
            raise ValueError("no images found")
        self.files = files
        self.resolution = resolution
        self.channels = channels
        self.pixel_range = pixel_range
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        # the decoded full-resolution set, filled as images are first asked for: (N, R, R) uint8
        fits = len(files) * resolution * resolution <= cache_bytes
        self._cache = np.empty((len(files), resolution, resolution), np.uint8) if fits else None
        self._cached = np.zeros(len(files), bool)

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray | Sequence[np.ndarray],
        *,
        resolution: int,
        channels: int = 1,
        pixel_range: tuple[float, float] = (-1.0, 1.0),
    ) -> ImageData:
        """Images already in memory, each (H, W) uint8 grey (e.g. phantoms)."""
        self = cls.__new__(cls)
        self.files = []
        self.resolution = resolution
        self.channels = channels
        self.pixel_range = pixel_range
        self.workers = 1
        self._pool = None
        self._cache = np.stack([_to_square_grey(Image.fromarray(np.asarray(a)), resolution) for a in images])
        self._cached = np.ones(len(self._cache), bool)
        return self

    def __len__(self) -> int:
        return len(self._cached)

    def __getstate__(self) -> dict[str, Any]:
        # a thread pool cannot cross a process boundary (torch.multiprocessing.spawn pickles arguments)
        return {**self.__dict__, "_pool": None}

    def _decode(self, index: int) -> np.ndarray:
        with Image.open(self.files[index]) as img:
            return _to_square_grey(img, self.resolution)

    def full(self, indices: Sequence[int]) -> np.ndarray:
        """Full-resolution grey images, (N, R, R) uint8."""
        idx = np.asarray(indices, dtype=np.int64)
        if self._cache is not None and self._cached[idx].all():
            return self._cache[idx]
        missing = [int(i) for i in np.unique(idx) if not self._cached[i]]
        if self._pool is None and self.workers > 1:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="gan-data")
        # PIL releases the GIL while decoding PNGs, so threads overlap the decodes
        decoded = list(self._pool.map(self._decode, missing)) if self._pool else [*map(self._decode, missing)]
        if self._cache is not None:
            self._cache[missing] = decoded
            self._cached[missing] = True
            return self._cache[idx]
        by_index = dict(zip(missing, decoded, strict=True))
        return np.stack([by_index[int(i)] for i in idx])

    def load(self, indices: Sequence[int], size: int, flip: np.ndarray | None = None) -> Tensor:
        """A batch at side `size`: (N, channels, size, size) float32 scaled to pixel_range."""
        x = torch.from_numpy(self.full(indices)).unsqueeze(1).float()  # (N, 1, R, R) in 0..255
        if size != self.resolution:
            # area = mean over each (R/size)^2 block: PGGAN's repeated 2x2 average, an antialiased resize
            x = F.interpolate(x, size=(size, size), mode="area")  # (N, 1, s, s)
        if flip is not None and np.any(flip):
            mask = torch.from_numpy(np.asarray(flip, bool))
            x[mask] = x[mask].flip(-1)
        lo, hi = self.pixel_range
        x = x * ((hi - lo) / 255.0) + lo
        return x.expand(-1, self.channels, -1, -1).contiguous()  # grey repeated to 3 channels if asked


class EpochSampler:
    """Global batches of sample indices: a new permutation per epoch drawn from (seed, epoch).

    The stream is a pure function of the position, so the state is one integer and a resumed run draws
    the same batches. Under DDP every rank draws the same global batch and keeps its own slice.
    """

    def __init__(self, n: int, *, seed: int, hflip: bool = False) -> None:
        if n < 1:
            raise ValueError("the data set is empty")
        self.n = n
        self.seed = seed
        self.hflip = hflip
        self.position = 0  # samples drawn so far, over all epochs
        self._epoch = -1
        self._perm = np.empty(0, np.int64)
        self._flips = np.empty(0, bool)

    def _load_epoch(self, epoch: int) -> None:
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch, 0]).permutation(self.n)
            self._flips = np.random.default_rng([self.seed, epoch, 1]).random(self.n) < 0.5
            self._epoch = epoch

    def next(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `count` (indices (count,) int64, flips (count,) bool); flips all False unless hflip."""
        idx, flips = [], []
        while count > 0:
            epoch, offset = divmod(self.position, self.n)
            self._load_epoch(epoch)
            take = min(count, self.n - offset)
            idx.append(self._perm[offset : offset + take])
            flips.append(self._flips[offset : offset + take])
            self.position += take
            count -= take
        flip = np.concatenate(flips) if self.hflip else np.zeros(sum(map(len, idx)), bool)
        return np.concatenate(idx), flip

    def state_dict(self) -> dict[str, int]:
        """Plain state for a resume checkpoint."""
        return {"position": self.position, "seed": self.seed, "n": self.n}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore `state_dict`; the data set must be the same size."""
        if int(state["n"]) != self.n or int(state["seed"]) != self.seed:
            raise ValueError("the resume state was written for another data set or seed")
        self.position = int(state["position"])
