"""bf16 autocast against float32: the critic's weight gradient, gradient penalty included (loss.py).

The penalty's weight gradient is 2 (||grad D|| - 1) d||grad D||/dw per sample. Once the critic is near
1-Lipschitz on the interpolates, as WGAN-GP training keeps it, (||grad D|| - 1) is a small difference of
two numbers near 1, so bf16's rounding of the input gradient becomes most of the result. The tests
build such a critic (a few float32 penalty-only steps, then the score layer rescaled so the mean norm is
exactly 1) and compare gradients under CPU bf16 autocast, which stands in for the CUDA path.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from app.ml.gan.config import GanConfig  # noqa: E402
from app.ml.gan.inference import bf16_supported  # noqa: E402
from app.ml.gan.loss import d_loss, gradient_penalty  # noqa: E402
from app.ml.gan.networks import Discriminator, Generator  # noqa: E402
from app.ml.phantoms import generate  # noqa: E402

pytestmark = pytest.mark.skipif(not bf16_supported("cpu"), reason="no bf16 convolutions on this CPU")

CFG = GanConfig(z_dim=32, resolution=16, channels=(32, 32, 16))
DEPTH, ALPHA, N = 2, 0.5, 8  # 16 px while the last block fades in: both fromRGB paths are live


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _input_grad_norms(D: Discriminator, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor):
    x_hat = torch.lerp(fake, real, eps.view(-1, 1, 1, 1)).requires_grad_(True)  # (N, 1, 16, 16)
    (grad,) = torch.autograd.grad(D(x_hat, DEPTH, ALPHA).sum(), x_hat)
    return grad.flatten(1).norm(dim=1)  # (N,)


def _unit_norm(D: Discriminator, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> None:
    mean = _input_grad_norms(D, real, fake, eps).mean()
    with torch.no_grad():
        D.score.weight /= mean  # the scores, hence their input gradients, scale with the last layer


@pytest.fixture(scope="module")
def near_lipschitz() -> tuple[Discriminator, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A critic whose input-gradient norm is within a few per cent of 1 on every interpolate."""
    torch.manual_seed(0)
    G, D = Generator(CFG), Discriminator(CFG)
    films = np.stack([p.image for p in generate(N, size=16, seed=3)])  # (N, 16, 16) uint8
    real = torch.from_numpy(films).float().div(127.5).sub(1).unsqueeze(1)  # (N, 1, 16, 16) in [-1, 1]
    g = torch.Generator().manual_seed(1)
    z, eps = torch.randn(N, CFG.z_dim, generator=g), torch.rand(N, generator=g)
    with torch.no_grad():
        fake = G(z, DEPTH, ALPHA).bfloat16().float()  # values G's bf16 output can hold: same input both ways
    opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    for _ in range(20):  # float32, penalty only
        _unit_norm(D, real, fake, eps)
        opt.zero_grad()
        gradient_penalty(D, real, fake, depth=DEPTH, alpha=ALPHA, eps=eps).backward()
        opt.step()
    _unit_norm(D, real, fake, eps)
    return D, real, fake, eps


def _weight_grad(D: Discriminator, loss_fn, bf16: bool) -> torch.Tensor:
    D.zero_grad(set_to_none=True)
    device = next(D.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
        loss = loss_fn()
    loss.backward()
    return torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None])


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))


def test_the_critic_is_near_one_lipschitz(near_lipschitz: tuple) -> None:
    D, real, fake, eps = near_lipschitz
    norms = _input_grad_norms(D, real, fake, eps)
    assert float(norms.min()) > 0.95 and float(norms.max()) < 1.05, norms


def test_bf16_penalty_gradient_matches_float32(near_lipschitz: tuple) -> None:
    # Before the penalty ran in float32 this cosine was 0.87 (relative error 60 %); 0.45 on a 32 px critic.
    D, real, fake, eps = near_lipschitz

    def penalty() -> torch.Tensor:
        return gradient_penalty(D, real, fake, depth=DEPTH, alpha=ALPHA, eps=eps)

    fp32, bf16 = _weight_grad(D, penalty, False), _weight_grad(D, penalty, True)
    assert _cosine(fp32, bf16) >= 0.99
    assert float((bf16 - fp32).norm() / fp32.norm()) < 0.05


def test_bf16_critic_loss_gradient_matches_float32(near_lipschitz: tuple) -> None:
    D, real, fake, eps = near_lipschitz

    def critic_loss() -> torch.Tensor:
        return d_loss(D, real, fake, depth=DEPTH, alpha=ALPHA, eps=eps)[0]

    fp32, bf16 = _weight_grad(D, critic_loss, False), _weight_grad(D, critic_loss, True)
    assert torch.isfinite(bf16).all()
    assert _cosine(fp32, bf16) >= 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_penalty_gradient_matches_float32_on_cuda(near_lipschitz: tuple) -> None:
    # CUDA's float32 convolutions may use TF32 (cudnn.allow_tf32 is on by default): still far finer than bf16
    import copy

    D, real, fake, eps = near_lipschitz
    D = copy.deepcopy(D).cuda()
    real, fake, eps = real.cuda(), fake.cuda(), eps.cuda()

    def penalty() -> torch.Tensor:
        return gradient_penalty(D, real, fake, depth=DEPTH, alpha=ALPHA, eps=eps)

    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        fp32 = _weight_grad(D, penalty, False)  # the reference in true float32
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert _cosine(fp32, _weight_grad(D, penalty, True)) >= 0.99


def test_the_penalty_runs_in_float32_under_autocast(near_lipschitz: tuple) -> None:
    D, real, fake, eps = near_lipschitz
    seen: list[torch.dtype] = []
    hook = D.final_conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            gradient_penalty(D, real, fake.bfloat16(), depth=DEPTH, alpha=ALPHA, eps=eps)
            D(real, DEPTH, ALPHA)  # the other critic passes keep bf16
    finally:
        hook.remove()
    assert seen == [torch.float32, torch.bfloat16]
