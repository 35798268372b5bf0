"""The Fréchet distance measured during PGGAN training (app.ml.gan.monitor) on a tiny 4 -> 8 px run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

from app.ml.classifier.checkpoints import load_classifier  # noqa: E402
from app.ml.gan.config import GanConfig  # noqa: E402
from app.ml.gan.data import ImageData  # noqa: E402
from app.ml.gan.monitor import Checkpoint, FrechetMonitor, checkpoint_at, read_fd_history  # noqa: E402
from app.ml.gan.schedule import TrainConfig  # noqa: E402
from app.ml.gan.train import train  # noqa: E402
from app.ml.metrics.domain import classifier_features  # noqa: E402
from app.ml.phantoms import generate  # noqa: E402

CLASSIFIER = Path(__file__).resolve().parents[2] / "model_store" / "phantom-classifier-64"
CFG = GanConfig(z_dim=16, resolution=8, channels=(16, 16))
# 128 images at 4 px, a 128-image fade-in to 8 px, 128 stable: checkpoints at 128 and 256, the end at 384
TCFG = TrainConfig(
    resolution=8,
    fade_images=128,
    stable_images=128,
    final_stable_images=128,
    batch_sizes=(8, 8),
    ema_rampup=True,
    metrics_every=64,
    grid_every=128,
    checkpoint_every=128,
)
N = 32  # images asked per measurement; 40 training films give halves A and B of M = 20 each
M = 20


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    # tiny networks run fastest on one thread, and OpenMP barriers stall badly on a shared 2-core box
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> ImageData:
    return ImageData.from_arrays([p.image for p in generate(40, size=32, seed=3)], resolution=8)


@pytest.fixture(scope="module")
def extractor():
    """The bundled classifier's features, as the job hands them to the monitor."""
    model, _ = load_classifier(CLASSIFIER)
    return lambda films: classifier_features(model, films)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, data: ImageData, extractor) -> tuple:
    """A tiny run with the monitor, counting the feature passes it makes."""
    calls: list[int] = []

    def counting(films):
        out = extractor(films)
        calls.append(len(out))
        return out

    mon = FrechetMonitor(counting, n=N, seed=0)
    run_dir = tmp_path_factory.mktemp("fd-run")
    result = train(CFG, TCFG, data, run_dir, measure_fn=mon)
    return run_dir, result, mon, calls


def test_one_point_per_checkpoint_and_one_at_the_end(measured: tuple) -> None:
    run_dir, result, mon, calls = measured
    assert not result.aborted and result.images_seen == 384
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    points = [ln for ln in lines if "fd" in ln]
    assert [p["images_seen"] for p in points] == [128, 256, 384]
    assert [p["resolution"] for p in points] == [4, 8, 8]  # 256 ends the 8 px fade-in, not a new stage
    assert [p["stage_start"] for p in points] == [0, 128, 128]
    assert [p["final"] for p in points] == [False, False, True]
    assert all(math.isfinite(p["fd"]) and p["fd"] >= 0 for p in points)
    assert all(math.isfinite(p["baseline"]) and p["baseline"] > 0 for p in points)
    assert points[1]["baseline"] == points[2]["baseline"] != points[0]["baseline"]  # one per resolution
    # Too few films for 2N: generates, half A and half B all have M per side, and the baseline is B vs A.
    assert all(p["n"] == M for p in points)
    assert all(len(mon.real[side][0]) == M for side in (4, 8))
    # all 40 real films' features once per resolution (2), M generates' at every measurement (3)
    assert sorted(mon.real) == [4, 8] and calls == [40, M, 40, M, M]
    assert read_fd_history(run_dir / "metrics.jsonl") == points
    assert result.metrics.get("d_loss") is not None  # the last loss line, not a measurement


def test_measuring_leaves_training_unchanged(measured: tuple, data: ImageData, tmp_path: Path) -> None:
    run_dir, *_ = measured
    plain = train(CFG, TCFG, data, tmp_path)
    with_fd = json.loads((run_dir / "snapshot" / "manifest.json").read_text())
    without = json.loads((plain.snapshot / "manifest.json").read_text())
    assert with_fd["sha256"] == without["sha256"]  # bit-identical EMA generator: the RNG was forked
    losses = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert not any("fd" in ln for ln in losses)


def test_a_resumed_run_keeps_earlier_points_and_measures_again_after_the_resume(
    measured: tuple, data: ImageData, extractor, tmp_path: Path
) -> None:
    # Stop after the first checkpoint, then resume: the history is the uninterrupted run's.
    steps = []

    def abort() -> bool:
        steps.append(1)
        return len(steps) > 20  # 20 steps of 8 = 160 images: past the checkpoint at 128

    first = train(CFG, TCFG, data, tmp_path, abort_fn=abort, measure_fn=FrechetMonitor(extractor, n=N))
    assert first.aborted and [p["images_seen"] for p in read_fd_history(tmp_path / "metrics.jsonl")] == [128]
    train(CFG, TCFG, data, tmp_path, resume=tmp_path / "resume.pt", measure_fn=FrechetMonitor(extractor, n=N))
    resumed = read_fd_history(tmp_path / "metrics.jsonl")
    uninterrupted = read_fd_history(measured[0] / "metrics.jsonl")
    assert [p["images_seen"] for p in resumed] == [128, 256, 384]
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert a["fd"] == pytest.approx(b["fd"], rel=1e-6) and a["baseline"] == pytest.approx(b["baseline"])


class _Replay(torch.nn.Module):
    """A stand-in generator that returns given (N, 1, s, s) images in order, whatever the latents."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.cfg = CFG
        self.images, self.pos = images, 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the monitor a device

    def forward(self, z: torch.Tensor, depth: int, alpha: float) -> torch.Tensor:
        out = self.images[self.pos : self.pos + len(z)]
        self.pos += len(z)
        return out


def _at(G: torch.nn.Module, data: ImageData) -> Checkpoint:
    return Checkpoint(G, data, 384, 384, depth=1, alpha=1.0, resolution=8, stage_start=128, final=True)


def test_the_training_films_themselves_score_near_zero_and_blank_films_far_above_the_baseline(
    data: ImageData, extractor
) -> None:
    mon = FrechetMonitor(extractor, n=N, seed=5)
    films = data.load(mon.real_indices(len(data)), 8)  # (N, 1, 8, 8): exactly the films measured against
    same = mon(_at(_Replay(films), data))
    assert same["fd"] < 1e-3 * same["baseline"], same
    blank = mon(_at(_Replay(torch.full_like(films, -1.0)), data))
    assert blank["fd"] > 10 * blank["baseline"], blank
    assert blank["baseline"] == same["baseline"] and sorted(mon.real) == [8]


def test_a_checkpoint_on_a_stage_boundary_belongs_to_the_stage_just_trained(data: ImageData) -> None:
    G = torch.nn.Linear(1, 1)
    at = checkpoint_at(G, data, CFG, TCFG, 128, final=False)
    assert (at.depth, at.resolution, at.alpha, at.stage_start, at.total) == (0, 4, 1.0, 0, 384)
    at = checkpoint_at(G, data, CFG, TCFG, 192, final=False)
    assert (at.resolution, at.stage_start) == (8, 128) and 0 < at.alpha < 1


def test_the_monitor_refuses_too_few_images(extractor) -> None:
    with pytest.raises(ValueError):
        FrechetMonitor(extractor, n=3)
    assert np.array_equal(np.sort(FrechetMonitor(extractor, n=10).real_indices(6)), np.arange(6))
    drawn = FrechetMonitor(extractor, n=10).real_indices(100)  # halves A and B of 10 each
    assert len(drawn) == 20 and len(set(drawn.tolist())) == 20
