"""Two-process DistributedDataParallel training on CPU (gloo) equals one process with the doubled batch.

Both runs see the same global batches: every rank draws the global batch of indices, latents and penalty
mixing weights and keeps its half, and DDP averages the two half-batch gradients, which is the gradient
of the mean over the whole batch. Minibatch-stddev is the one part that groups within a GPU's batch, so
the test uses groups of one (no cross-sample statistic) to make the two set-ups the same function.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from app.ml.gan.checkpoints import load_resume  # noqa: E402
from app.ml.gan.config import GanConfig  # noqa: E402
from app.ml.gan.data import ImageData  # noqa: E402
from app.ml.gan.networks import Generator  # noqa: E402
from app.ml.gan.schedule import TrainConfig  # noqa: E402
from app.ml.gan.train import train  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")

CFG = GanConfig(z_dim=16, resolution=8, channels=(16, 8), mbstd_group=1)
WORLD = 2


def _tcfg(per_gpu_batch: int) -> TrainConfig:
    # global batch 8 either way: 32 images at 4 px, 32 fading in and 32 stable at 8 px -> 12 steps
    b = per_gpu_batch
    return TrainConfig(
        resolution=8,
        fade_images=32,
        stable_images=32,
        final_stable_images=32,
        batch_sizes=(b, b),
        hflip=True,
        metrics_every=32,
        grid_every=96,
        checkpoint_every=1000,
    )


def _data() -> ImageData:
    imgs = np.random.default_rng(1).integers(0, 256, (24, 8, 8), dtype=np.uint8)  # (24, 8, 8)
    return ImageData.from_arrays(imgs, resolution=8)


def _worker(rank: int, port: int, run_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    result = train(CFG, _tcfg(8 // WORLD), _data(), Path(run_dir), device="cpu")
    assert result.steps == 12 and result.images_seen == 96
    assert not dist.is_initialized()  # train() tears down the group it created


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes that each import torch and train: ~11 s of both cores
def test_two_process_ddp_matches_one_process_with_the_global_batch(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "ddp")), nprocs=WORLD, join=True)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(CFG, _tcfg(8), _data(), tmp_path / "single", device="cpu")
    finally:
        torch.set_num_threads(threads)

    ddp, single = load_resume(tmp_path / "ddp"), load_resume(tmp_path / "single")
    assert ddp["counters"]["images_seen"] == single["counters"]["images_seen"] == 96
    # Only rank 0 writes: one metrics line per interval, no second writer.
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 3
    # The two runs differ only in float summation order (two half-batch means averaged by the all-reduce
    # vs one mean over 8), about 1e-7 relative per step. After 12 Adam steps the weights agree to ~3e-7;
    # one lr = 1e-3 Adam step in the wrong direction, or a rank training on the wrong slice, would show
    # up as differences around 1e-3, far outside this tolerance.
    for net in ("G", "D", "G_ema"):
        for name, w in single[net].items():
            torch.testing.assert_close(
                ddp[net][name], w, rtol=1e-5, atol=1e-5, msg=lambda m, k=f"{net}.{name}": f"{k}: {m}"
            )
    moved = sum(float((single["G"][k] - v).abs().max()) for k, v in _initial_g().items())
    assert moved > 1e-3  # the comparison is not vacuous: training changed G


def _initial_g() -> dict[str, torch.Tensor]:
    torch.manual_seed(_tcfg(8).seed)  # train() seeds the init the same way
    return Generator(CFG).state_dict()
