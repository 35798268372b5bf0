"""PGGAN layers, generator, discriminator and the fast sampling path (Karras et al. 2018)."""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from app.ml.gan import inference  # noqa: E402
from app.ml.gan.config import GanConfig  # noqa: E402
from app.ml.gan.inference import (  # noqa: E402
    bf16_supported,
    prepare_for_inference,
    quantize_uint8,
    upsample_conv_kernel,
)
from app.ml.gan.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm  # noqa: E402
from app.ml.gan.networks import Generator  # noqa: E402
from tests.gan_cases import FAST_CFG, models  # noqa: E402

TINY = GanConfig(z_dim=16, resolution=16, image_channels=1, channels=(16, 16, 8, 8))


def tiny(image_channels: int = 1, **kw: object) -> GanConfig:
    return GanConfig(**{**TINY.to_dict(), "channels": TINY.channels, "pixel_range": TINY.pixel_range,
                        "image_channels": image_channels, **kw})  # fmt: skip


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_depth_and_alpha(channels: int) -> None:
    cfg = tiny(channels)
    g, d = models(cfg)
    z = torch.randn(5, cfg.z_dim)
    for depth in range(cfg.depth_count):
        side = cfg.size_at(depth)
        for alpha in (0.0, 0.3, 1.0):
            img = g(z, depth, alpha)
            assert img.shape == (5, channels, side, side)
            assert d(img, depth, alpha).shape == (5,)
    assert g(z).shape == (5, channels, 16, 16)  # depth None = full resolution
    assert d(torch.randn(3, channels, 16, 16)).shape == (3,)


def test_bad_arguments_are_refused() -> None:
    g, d = models(TINY)
    z = torch.randn(2, 16)
    with pytest.raises(ValueError, match="depth"):
        g(z, depth=3)
    with pytest.raises(ValueError, match="alpha"):
        g(z, depth=1, alpha=1.5)
    with pytest.raises(ValueError, match="z must be"):
        g(torch.randn(2, 15))
    with pytest.raises(ValueError, match="x must be"):
        d(torch.randn(2, 1, 8, 8), depth=2)


def test_generator_fade_in() -> None:
    g, _ = models(tiny(3))
    z = torch.randn(4, 16)
    with torch.no_grad():
        for depth in (1, 2):
            new, old = g(z, depth, 1.0), g(z, depth, 0.0)
            assert (new - old).abs().max() > 1e-3
            prev = F.interpolate(g(z, depth - 1, 1.0), scale_factor=2, mode="nearest")
            torch.testing.assert_close(old, prev, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(g(z, depth, 0.25), prev + 0.25 * (new - prev), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g(z, 0, 0.0), g(z, 0, 1.0))  # nothing to fade at 4 px


def test_discriminator_fade_in() -> None:
    _, d = models(tiny(3))
    x = torch.randn(6, 3, 16, 16)
    with torch.no_grad():
        new, old = d(x, 2, 1.0), d(x, 2, 0.0)
        assert (new - old).abs().max() > 1e-4
        # alpha = 0 is the depth-1 critic fed the 2x2-pooled image
        torch.testing.assert_close(old, d(F.avg_pool2d(x, 2), 1, 1.0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale_bias", [False, True])
def test_equalised_conv_scales_weight_and_optionally_bias(scale_bias: bool) -> None:
    torch.manual_seed(1)
    conv = EqualizedConv2d(4, 6, 3, scale_bias=scale_bias)
    assert torch.count_nonzero(conv.bias) == 0  # biases start at zero
    with torch.no_grad():
        conv.bias.normal_()
    c = math.sqrt(2 / (4 * 3 * 3))
    assert conv.scale == pytest.approx(c)
    x = torch.randn(2, 4, 7, 7)
    bias = conv.bias * c if scale_bias else conv.bias
    expected = F.conv2d(x, conv.weight * c, bias, padding=1)
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.effective_weight(), conv.weight * c)
    torch.testing.assert_close(conv.effective_bias(), bias)
    other = F.conv2d(x, conv.weight * c, conv.bias if scale_bias else conv.bias * c, padding=1)
    assert (conv(x) - other).abs().max() > 1e-3  # the bias convention is visible in the output


@pytest.mark.parametrize("scale_bias", [False, True])
def test_equalised_linear(scale_bias: bool) -> None:
    torch.manual_seed(2)
    lin = EqualizedLinear(32, 5, scale_bias=scale_bias)
    with torch.no_grad():
        lin.bias.normal_()
    c = math.sqrt(2 / 32)
    x = torch.randn(3, 32)
    expected = x @ (lin.weight * c).T + (lin.bias * c if scale_bias else lin.bias)
    torch.testing.assert_close(lin(x), expected, rtol=1e-5, atol=1e-5)


def test_weights_are_stored_unit_normal() -> None:
    torch.manual_seed(3)
    w = EqualizedConv2d(128, 128, 3).weight.detach()
    assert abs(float(w.mean())) < 0.01 and abs(float(w.std()) - 1) < 0.01


def test_pixel_norm_normalises_each_pixel() -> None:
    x = torch.randn(3, 10, 5, 5) * torch.linspace(0.1, 50, 5).view(1, 1, 1, 5)
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(3, 5, 5), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(PixelNorm()(7 * x), y, rtol=1e-5, atol=1e-5)


def _group_stat(x: torch.Tensor) -> float:
    return float(torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean())


def test_minibatch_stddev_divisible_batch() -> None:
    x = torch.randn(8, 3, 4, 4)
    y = MinibatchStdDev(group_size=4)(x)
    assert y.shape == (8, 4, 4, 4)
    torch.testing.assert_close(y[:, :3], x)
    stat = y[:, 3]
    assert torch.all(stat == stat[:, :1, :1])  # constant over the map
    # sample k is in group k % 2 (Karras et al.'s reshape): groups {0, 2, 4, 6} and {1, 3, 5, 7}
    for k in range(8):
        assert float(stat[k, 0, 0]) == pytest.approx(_group_stat(x[k % 2 :: 2]), rel=1e-5)


@pytest.mark.parametrize(("n", "groups"), [(6, [4, 2]), (5, [5]), (7, [4, 3]), (2, [2]), (1, [1])])
def test_minibatch_stddev_ragged_batch(n: int, groups: list[int]) -> None:
    x = torch.randn(n, 2, 4, 4) * 3
    y = MinibatchStdDev(group_size=4)(x)
    assert y.shape == (n, 3, 4, 4) and torch.isfinite(y).all()
    start = 0
    for size in groups:
        expected = _group_stat(x[start : start + size])
        for k in range(start, start + size):
            assert float(y[k, 2, 0, 0]) == pytest.approx(expected, rel=1e-5, abs=1e-6)
        start += size


def test_init_is_deterministic_under_a_seed() -> None:
    g1, d1 = models(TINY, seed=7)
    g2, d2 = models(TINY, seed=7)
    g3, _ = models(TINY, seed=8)
    for a, b in zip(g1.state_dict().values(), g2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(d1.state_dict().values(), d2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(g1.latent.weight, g3.latent.weight)


def test_gradients_reach_every_parameter() -> None:
    g, d = models(tiny(3))
    g.train()
    d.train()
    score = d(g(torch.randn(4, 16), 2, 0.5), 2, 0.5).mean()
    score.backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        if name.startswith(("to_rgb.0.", "from_rgb.0.")):  # the 4 px ends are unused at depth 2
            assert p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_upsample_conv_kernel_is_upsample_then_conv() -> None:
    torch.manual_seed(4)
    w, b, x = torch.randn(5, 3, 3, 3), torch.randn(5), torch.randn(2, 3, 6, 6)
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, b, padding=1)
    got = F.conv_transpose2d(x, upsample_conv_kernel(w), b, stride=2, padding=1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("channels", "scale_bias"), [(1, False), (3, True)])
def test_fast_path_fp32_matches_generator(channels: int, scale_bias: bool) -> None:
    cfg = GanConfig(**FAST_CFG, image_channels=channels, scale_bias=scale_bias)
    g, _ = models(cfg, seed=5)
    for p in g.parameters():  # non-zero biases, so folding them is exercised
        p.data.add_(0.1 * torch.randn_like(p))
    fast = prepare_for_inference(g, "fp32")
    z = torch.randn(3, 32)
    with torch.no_grad():
        expected = g(z)
    got = fast(z)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-4
    assert not any(p.requires_grad for p in fast.buffers())
    assert torch.equal(fast(z, cfg.depth_count - 1, 1.0), got)  # callable like a Generator
    with pytest.raises(ValueError, match="full depth"):
        fast(z, 1, 1.0)
    with pytest.raises(ValueError, match="full depth"):
        fast(z, None, 0.5)


def _spread_output(g: Generator, z: torch.Tensor) -> None:
    # Random weights give images far outside pixel_range; rescale the last toRGB so they span it.
    lo, hi = g.cfg.pixel_range
    rgb = g.to_rgb[-1]
    with torch.no_grad():
        out = g(z)
        k = 0.2 * (hi - lo) / float(out.std())
        shift = (lo + hi) / 2 - k * float(out.mean())
        rgb.weight.mul_(k)
        rgb.bias.mul_(k).add_(shift / rgb.scale if rgb.scale_bias else shift)


@pytest.mark.skipif(not bf16_supported("cpu"), reason="no bf16 convolutions on this CPU")
@pytest.mark.parametrize(
    ("pixel_range", "scale_bias", "seed"), [((0.0, 1.0), True, 6), ((-1.0, 1.0), False, 7)]
)
def test_fast_path_bf16_within_one_grey_level(
    pixel_range: tuple[float, float], scale_bias: bool, seed: int
) -> None:
    cfg = GanConfig(**FAST_CFG, image_channels=3, pixel_range=pixel_range, scale_bias=scale_bias)
    g, _ = models(cfg, seed=seed)
    z = torch.randn(4, 32)
    _spread_output(g, z)
    ref = quantize_uint8(prepare_for_inference(g, "fp32")(z), pixel_range).int()
    fast = prepare_for_inference(g, "bf16")
    assert fast.dtype == torch.bfloat16
    got = quantize_uint8(fast(z), pixel_range).int()
    clipped = float(((ref == 0) | (ref == 255)).float().mean())
    assert clipped < 0.05  # the images span the range, so the comparison means something
    diff = (got - ref).abs()
    assert diff.max() > 0  # bf16 really ran
    assert float((diff <= 1).float().mean()) >= 0.99


def test_bf16_falls_back_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inference, "bf16_supported", lambda device="cpu": False)
    g, _ = models(TINY)
    with pytest.warns(UserWarning, match="fp32"):
        fast = prepare_for_inference(g, "bf16")
    assert fast.dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(g, "fp16")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prepare_for_inference(g, "fp32").dtype == torch.float32
