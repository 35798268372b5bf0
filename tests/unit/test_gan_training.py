"""PGGAN training: WGAN-GP against hand computations, the growth schedule, data, and a tiny 4 -> 16 px run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from app.ml.gan.checkpoints import load_model  # noqa: E402
from app.ml.gan.data import EpochSampler, ImageData  # noqa: E402
from app.ml.gan.loss import d_loss, g_loss, gradient_penalty  # noqa: E402
from app.ml.gan.networks import Discriminator, Generator  # noqa: E402
from app.ml.gan.sampling import sample  # noqa: E402
from app.ml.gan.schedule import TrainConfig, phase_at, total_images  # noqa: E402
from app.ml.gan.train import train  # noqa: E402
from tests.gan_cases import TRAINING_CFG, phantom_data  # noqa: E402

CFG = TRAINING_CFG


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    # tiny networks run fastest on one thread, and OpenMP barriers stall badly on a shared 2-core box
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class LinearCritic(torch.nn.Module):
    """D(x) = w . x + b: its input gradient is w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())  # (C, H, W)
        self.b = torch.nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor, depth: int, alpha: float) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b  # (N,)


def _batch(seed: int, n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randn(n, 1, 4, 4, generator=g)


def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared() -> None:
    w = torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.7
    D = LinearCritic(w, 0.3)
    real, fake = _batch(2)
    gp = gradient_penalty(D, real, fake, depth=0, alpha=1.0)
    assert gp.item() == pytest.approx((w.norm().item() - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_uses_the_given_interpolation() -> None:
    # D(x) = sum(x^2) has input gradient 2 x, so the penalty depends on where x_hat lies
    real, fake = _batch(3)
    eps = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0])
    gp = gradient_penalty(lambda x, d, a: x.square().flatten(1).sum(1), real, fake, depth=0, alpha=1, eps=eps)
    r, f, e = real.double().numpy(), fake.double().numpy(), eps.double().numpy()[:, None, None, None]
    x_hat = e * r + (1 - e) * f
    norms = np.sqrt(((2 * x_hat.reshape(5, -1)) ** 2).sum(1))  # (5,) input-gradient norms
    expected = np.mean((norms - 1) ** 2)
    assert gp.item() == pytest.approx(expected, rel=1e-5)


def test_critic_loss_and_its_weight_gradient_match_a_hand_computation() -> None:
    w = torch.randn(1, 4, 4, generator=torch.Generator().manual_seed(4)) * 0.5
    D = LinearCritic(w, -0.2)
    real, fake = _batch(5)
    loss, stats = d_loss(D, real, fake, depth=0, alpha=1.0, gp_lambda=10.0, drift=0.001)
    loss.backward()

    wv, b = w.double().numpy().ravel(), -0.2
    r, f = real.double().numpy().reshape(5, -1), fake.double().numpy().reshape(5, -1)
    d_r, d_f = r @ wv + b, f @ wv + b
    norm = np.linalg.norm(wv)
    expected = d_f.mean() - d_r.mean() + 10 * (norm - 1) ** 2 + 0.001 * np.mean(d_r**2)
    # d/dw: mean(f) - mean(r) + 20 (||w|| - 1) w / ||w|| + 0.002 mean(d_r r); the penalty's part
    # only appears if the penalty was built with create_graph (a double backward)
    grad_w = f.mean(0) - r.mean(0) + 20 * (norm - 1) * wv / norm + 0.002 * (d_r[:, None] * r).mean(0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(D.w.grad.double().numpy().ravel(), grad_w, rtol=1e-4, atol=1e-6)
    assert stats["gp"].item() == pytest.approx((norm - 1) ** 2, rel=1e-5)
    assert stats["drift"].item() == pytest.approx(np.mean(d_r**2), rel=1e-5)
    assert g_loss(D, fake, depth=0, alpha=1.0).item() == pytest.approx(-d_f.mean(), rel=1e-5, abs=1e-6)


def test_phase_at_walks_stages_and_fade_ins() -> None:
    cfg = TrainConfig(
        resolution=16, fade_images=100, stable_images=200, final_stable_images=300, batch_sizes=(8, 6, 4)
    )
    assert total_images(cfg) == 200 + 300 + 400
    expected = {
        0: (0, 1.0, 8, 0),
        199: (0, 1.0, 8, 199),
        200: (1, 0.0, 6, 0),
        250: (1, 0.5, 6, 50),
        300: (1, 1.0, 6, 100),
        499: (1, 1.0, 6, 299),
        500: (2, 0.0, 4, 0),
        575: (2, 0.75, 4, 75),
        899: (2, 1.0, 4, 399),
        5000: (2, 1.0, 4, 4500),  # past the end: stays at the last stage
    }
    for images, phase in expected.items():
        assert tuple(phase_at(images, cfg)) == pytest.approx(phase), images
    # walking the counter never moves backwards in depth, and alpha never jumps within a fade-in
    phases = [phase_at(i, cfg) for i in range(0, 900, 7)]
    assert all(b.depth >= a.depth for a, b in zip(phases, phases[1:], strict=False))
    assert all(
        abs(b.alpha - a.alpha) <= 7 / 100 + 1e-9
        for a, b in zip(phases, phases[1:], strict=False)
        if a.depth == b.depth
    )


def test_default_schedule_is_the_authors() -> None:
    cfg = TrainConfig()
    # 0.8M at 4 px, 1.6M at each of 8..512 px, 2M at 1024 px (FACTS.md)
    assert total_images(cfg) == 800_000 + 7 * 1_600_000 + 2_000_000
    assert phase_at(800_000, cfg).depth == 1 and phase_at(800_000, cfg).alpha == 0.0
    assert phase_at(800_000 + 1_600_000 + 400_000, cfg)[:3] == (2, 0.5, 16)
    assert phase_at(14_000_000 - 1, cfg)[:3] == (8, 1.0, 3)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_image_data_reads_grey_rgb_and_non_square_files(tmp_path: Path) -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey).save(tmp_path / "a.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "b.png")
    wide = np.zeros((16, 24), np.uint8)
    wide[:, 4:20] = grey  # the centre square is `grey`
    Image.fromarray(wide).save(tmp_path / "c.png")
    data = ImageData(tmp_path, resolution=16, channels=3, pixel_range=(0.0, 1.0))
    assert len(data) == 3
    x = data.load([0, 1, 2], 16)
    assert x.shape == (3, 3, 16, 16) and x.dtype == torch.float32
    for k in range(3):
        np.testing.assert_allclose(x[k, 0].numpy(), grey / 255.0, atol=1e-6)
        assert torch.equal(x[k, 0], x[k, 2])  # grey repeated to 3 channels


def test_image_data_downsamples_with_a_box_filter_and_flips_only_when_asked() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (4, 16, 16), dtype=np.uint8)
    data = ImageData.from_arrays(imgs, resolution=16)  # pixel range (-1, 1)
    x = data.load([2, 0], 4)  # (2, 1, 4, 4)
    box = imgs[[2, 0]].astype(np.float64).reshape(2, 4, 4, 4, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(x[:, 0].numpy(), box / 255.0 * 2 - 1, atol=1e-5)
    flipped = data.load([2, 0], 4, np.array([True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    _, flips = EpochSampler(4, seed=0).next(64)
    assert not flips.any()  # no flips by default: laterality matters
    assert EpochSampler(4, seed=0, hflip=True).next(64)[1].any()


def test_sampler_is_deterministic_resumable_and_covers_each_epoch() -> None:
    a = EpochSampler(10, seed=7, hflip=True)
    first, _ = a.next(10)
    assert sorted(first) == list(range(10))  # one epoch = one permutation
    b = EpochSampler(10, seed=7, hflip=True)
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        ia, fa = a.next(7)  # batches straddle epoch boundaries
        ib, fb = b.next(7)
        assert np.array_equal(ia, ib) and np.array_equal(fa, fb)
    assert not np.array_equal(EpochSampler(10, seed=8).next(10)[0], first)


RUN_STAGE = 640  # images per fade-in / stable phase of the smoke run (4 -> 8 -> 16 px)
RUN_TOTAL = RUN_STAGE + 2 * RUN_STAGE + 3 * RUN_STAGE  # 3840 images, 240 steps of 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list, np.ndarray]:
    data, imgs = phantom_data()
    tcfg = TrainConfig(
        resolution=16,
        fade_images=RUN_STAGE,
        stable_images=RUN_STAGE,
        final_stable_images=2 * RUN_STAGE,
        batch_sizes=(16, 16, 16),
        ema_rampup=True,  # a short run: let the EMA follow G from the start
        metrics_every=320,
        grid_every=960,
        checkpoint_every=960,
    )
    run_dir = tmp_path_factory.mktemp("run")
    calls: list = []  # TrainingProgress reports
    result = train(CFG, tcfg, data, run_dir, progress_fn=calls.append)
    return run_dir, result, calls, imgs


def test_training_moves_samples_towards_the_data(trained: tuple) -> None:
    run_dir, result, _, imgs = trained
    assert not result.aborted and result.images_seen == RUN_TOTAL
    G, manifest = load_model(run_dir / "snapshot")
    assert manifest["images_seen"] == result.images_seen and manifest["resolution"] == 16
    torch.manual_seed(0)
    untrained = Generator(CFG)
    data_mean = imgs.astype(np.float64).mean(0)  # (16, 16)

    def distance(net: torch.nn.Module) -> float:
        mean = np.stack([img for _, img in sample(net, 64, seed=11)]).astype(np.float64).mean(0)
        return float(np.abs(mean - data_mean).mean())  # L1 between mean images, in grey levels

    before, after = distance(untrained), distance(G)
    assert after < 0.7 * before, (before, after)


def test_training_writes_metrics_grids_and_reports_progress(trained: tuple) -> None:
    run_dir, result, calls, _ = trained
    lines = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [ln["images_seen"] for ln in lines] == list(range(320, RUN_TOTAL + 1, 320))
    keys = {"images_seen", "depth", "alpha", "d_loss", "g_loss", "gp", "drift", "wall_s", "images_per_s"}
    assert all(keys <= ln.keys() for ln in lines)
    assert all(np.isfinite(ln["d_loss"]) and np.isfinite(ln["g_loss"]) for ln in lines)
    assert [ln["depth"] for ln in lines][0] == 0 and lines[-1]["depth"] == 2
    assert result.metrics == lines[-1]
    assert (run_dir / "grid-latest.png").exists() and (run_dir / "grid-000003.png").exists()
    with Image.open(run_dir / "grid-latest.png") as grid:
        assert grid.mode == "L" and grid.size == (4 * 64, 4 * 64)  # 16 tiles of 16 px shown at 64 px
    assert calls and calls[-1].done == calls[-1].total == result.images_seen and calls[-1].fraction == 1
    assert all(b.done >= a.done for a, b in zip(calls, calls[1:], strict=False))
    assert calls[-1].note.startswith(f"{result.images_seen:,} / {result.images_seen:,} images · 16 px")
    assert (run_dir / "resume.pt").exists()


def test_abort_stops_early_and_leaves_a_resume_checkpoint(tmp_path: Path) -> None:
    data, _ = phantom_data()
    tcfg = TrainConfig(
        resolution=16, fade_images=64, stable_images=64, final_stable_images=64, batch_sizes=(8, 8, 8)
    )
    asked = []

    def abort() -> bool:
        asked.append(1)
        return len(asked) > 3  # three steps, then stop

    result = train(CFG, tcfg, data, tmp_path, abort_fn=abort)
    assert result.aborted and result.steps == 3 and result.images_seen == 24
    assert result.snapshot is None and not (tmp_path / "snapshot").exists()
    assert result.resume_path == tmp_path / "resume.pt" and result.resume_path.exists()
    state = torch.load(result.resume_path, weights_only=True)
    assert state["counters"]["images_seen"] == 24 and state["counters"]["step"] == 3


def test_losses_accept_bf16_fakes_under_autocast() -> None:
    # CPU autocast stands in for the CUDA bf16 path: G's output is bf16, the data float32
    torch.manual_seed(0)
    G, D = Generator(CFG), Discriminator(CFG)
    real = torch.rand(8, 1, 16, 16) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            fake = G(torch.randn(8, CFG.z_dim), 2, 0.5)
        loss, stats = d_loss(D, real, fake, depth=2, alpha=0.5)
    assert fake.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in D.parameters() if p.grad is not None)
    assert torch.isfinite(stats["gp"]) and stats["gp"] > 0
