"""The CUDA paths against their CPU references: the fast sampling path, the bf16 penalty gradient and a
bf16 training run. Marked `gpu` and skipped without CUDA; run them on a GPU machine with
`pytest tests/gpu`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from app.ml.gan.checkpoints import load_model  # noqa: E402
from app.ml.gan.config import GanConfig  # noqa: E402
from app.ml.gan.inference import prepare_for_inference  # noqa: E402
from app.ml.gan.loss import gradient_penalty  # noqa: E402
from app.ml.gan.schedule import TrainConfig  # noqa: E402
from app.ml.gan.train import train  # noqa: E402
from tests import gan_cases  # noqa: E402
from tests.gan_cases import ALPHA, DEPTH, FAST_CFG, cosine, weight_grad  # noqa: E402

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_fast_path_on_cuda_matches_cpu_generator() -> None:
    cfg = GanConfig(**FAST_CFG, image_channels=3, scale_bias=True)
    g, _ = gan_cases.models(cfg, seed=9)
    z = torch.randn(4, 32)
    with torch.no_grad():
        expected = g(z)
    got = prepare_for_inference(g.cuda(), "fp32")(z.cuda()).cpu()
    assert float((got - expected).abs().max()) < 1e-3  # TF32 may be on for cuDNN convolutions


def test_bf16_penalty_gradient_matches_float32_on_cuda() -> None:
    # CUDA's float32 convolutions may use TF32 (cudnn.allow_tf32 is on by default): still far finer than bf16
    D, real, fake, eps = gan_cases.near_lipschitz_critic()
    D = copy.deepcopy(D).cuda()
    real, fake, eps = real.cuda(), fake.cuda(), eps.cuda()

    def penalty() -> torch.Tensor:
        return gradient_penalty(D, real, fake, depth=DEPTH, alpha=ALPHA, eps=eps)

    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        fp32 = weight_grad(D, penalty, False)  # the reference in true float32
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert cosine(fp32, weight_grad(D, penalty, True)) >= 0.99


def test_bf16_training_on_cuda(tmp_path: Path) -> None:
    data, _ = gan_cases.phantom_data()
    tcfg = TrainConfig(
        resolution=16, fade_images=64, stable_images=64, final_stable_images=128, batch_sizes=(8, 8, 8)
    )
    result = train(gan_cases.TRAINING_CFG, tcfg, data, tmp_path, device="cuda")
    lines = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert not result.aborted and all(np.isfinite(ln["d_loss"]) for ln in lines)
    G, _ = load_model(tmp_path / "snapshot")  # written from CUDA, loads on CPU
    assert next(G.parameters()).device.type == "cpu"
