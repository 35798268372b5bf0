"""A sampling-only PGGAN generator (Karras et al. 2018) built for speed, mainly on CPU.

`prepare_for_inference(G)` returns a module that gives the same images as `G(z)` at full depth and
alpha = 1, computed with less work:
- the equalised-lr constants are folded into the weights (and biases, under `scale_bias`) once;
- each block's nearest x2 upsample followed by a 3x3 conv is one 4x4 stride-2 transposed conv, the
  identity behind Karras et al.'s "fused_scale" upscale: 16 instead of 36 multiply-adds per output
  pixel and channel pair, and no upsampled tensor in memory;
- activations are channels_last (oneDNN's native layout, no reorders around each conv), LeakyReLU and
  PixelNorm work in place, and PixelNorm is one reduction plus one multiply;
- optionally bfloat16 weights and activations (weights cast once, not per call as autocast would) where
  the hardware has native bf16; the last toRGB runs in fp32.
Gradients are off (`torch.inference_mode`): use the plain Generator for latent optimisation.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.gan.layers import PIXEL_NORM_EPS
from app.ml.gan.networks import Generator

Precision = Literal["fp32", "bf16"]

# Rows: the 4 taps of the transposed conv along one axis; columns: the 3x3 conv's taps that land on it.
# Output row 2i reads input rows i-1 (tap 0) and i (taps 1, 2); row 2i+1 reads i (taps 0, 1), i+1 (tap 2).
_UPSAMPLE_TAPS = torch.tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.float32)


def upsample_conv_kernel(weight: Tensor) -> Tensor:
    """3x3 conv weight (out, in, 3, 3) -> conv_transpose2d weight (in, out, 4, 4) for stride 2, padding 1.

    conv_transpose2d(x, K, stride=2, padding=1) == conv2d(upsample_nearest_x2(x), weight, padding=1).
    """
    taps = _UPSAMPLE_TAPS.to(weight)
    return torch.einsum("ay,oiyx,bx->ioab", taps, weight, taps).contiguous()


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 convolutions run (and agree with fp32) on `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:  # a tiny probe: some builds or CPUs reject bf16 convolutions at run time
        gen = torch.Generator().manual_seed(0)
        x, w = torch.randn(1, 8, 8, 8, generator=gen), torch.randn(8, 8, 3, 3, generator=gen)
        y32 = F.conv2d(x, w, padding=1)
        y16 = F.conv2d(x.bfloat16(), w.bfloat16(), padding=1).float()
    except RuntimeError:
        return False
    return bool(torch.allclose(y16, y32, rtol=0.05, atol=0.05 * float(y32.abs().max())))


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 is likely faster than fp32 on `device` (hardware bf16, not emulation)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bf16_supported(device)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
    return native and bf16_supported(device)


def quantize_uint8(images: Tensor, pixel_range: tuple[float, float]) -> Tensor:
    """Each channel mapped linearly from `pixel_range` to 0..255, rounded and clipped, as uint8."""
    lo, hi = pixel_range
    return ((images.float() - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(torch.uint8)


def _pixel_norm_(x: Tensor, acc32: bool) -> Tensor:
    # x: (N, C, H, W); one reduction over C, then one in-place multiply by the (N, 1, H, W) factor.
    # For bf16 maps, acc32 keeps the norm in fp32 rather than rounding it to bf16 (slower, more exact).
    s = torch.linalg.vector_norm(x, dim=1, keepdim=True, dtype=torch.float32 if acc32 else None)
    s = s.float().square_().div_(x.shape[1]).add_(PIXEL_NORM_EPS).rsqrt_()
    return x.mul_(s.to(x.dtype))  # a mixed-dtype in-place multiply would copy x to fp32 and back


class FastGenerator(nn.Module):
    """z (N, z_dim) -> images (N, image_channels, R, R) in fp32, as Generator(z) at full depth.

    In bf16 mode, layers whose output side is at most `fp32_max_side` stay fp32: they cost little and
    their rounding errors would otherwise travel through every later layer.
    """

    def __init__(
        self,
        gen: Generator,
        dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
        fp32_max_side: int = 16,
        norm_acc32: bool = True,
    ) -> None:
        super().__init__()
        self.cfg = gen.cfg
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.norm_acc32 = norm_acc32
        self.layers: list[tuple[str, bool, torch.dtype]] = []  # (buffer name, is upsampling, dtype)

        def dtype_at(side: int) -> torch.dtype:
            return torch.float32 if side <= fp32_max_side else dtype

        with torch.no_grad():
            self._fold("latent", gen.latent.effective_weight(), gen.latent.effective_bias(), torch.float32)
            self._add("init", gen.init_conv.effective_weight(), gen.init_conv.effective_bias(), dtype_at(4))
            for i, block in enumerate(gen.blocks):
                side = self.cfg.size_at(i + 1)
                w_up = upsample_conv_kernel(block.conv1.effective_weight())
                self._add(f"up{i}", w_up, block.conv1.effective_bias(), dtype_at(side), up=True)
                self._add(
                    f"conv{i}", block.conv2.effective_weight(), block.conv2.effective_bias(), dtype_at(side)
                )
            rgb = gen.to_rgb[-1]
            self._fold("rgb", rgb.effective_weight(), rgb.effective_bias(), torch.float32)
        self.eval()

    def _fold(self, name: str, weight: Tensor, bias: Tensor, dtype: torch.dtype) -> None:
        w = weight.detach().to(dtype)
        if w.ndim == 4:
            w = w.contiguous(memory_format=self.memory_format)
        self.register_buffer(f"{name}_w", w, persistent=False)
        self.register_buffer(f"{name}_b", bias.detach().to(dtype), persistent=False)

    def _add(self, name: str, weight: Tensor, bias: Tensor, dtype: torch.dtype, up: bool = False) -> None:
        self._fold(name, weight, bias, dtype)
        self.layers.append((name, up, dtype))

    def _wb(self, name: str) -> tuple[Tensor, Tensor]:
        return getattr(self, f"{name}_w"), getattr(self, f"{name}_b")

    @torch.inference_mode()
    def forward(self, z: Tensor, depth: int | None = None, alpha: float = 1.0) -> Tensor:
        """Full-resolution images (N, image_channels, R, R), fp32, contiguous.

        `depth` and `alpha` exist so that code written for Generator can call this one; only the full
        depth at alpha = 1 is built.
        """
        if depth not in (None, self.cfg.depth_count - 1) or alpha != 1.0:
            raise ValueError("FastGenerator only samples at full depth with alpha = 1; use Generator")
        if z.ndim != 2 or z.shape[1] != self.cfg.z_dim:
            raise ValueError(f"z must be (N, {self.cfg.z_dim}), got {tuple(z.shape)}")
        slope = self.cfg.leaky_slope
        z = z.float()
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS)
        x = F.leaky_relu_(F.linear(z, *self._wb("latent")), slope)  # (N, C0 * 16)
        x = x.view(z.shape[0], -1, 4, 4).contiguous(memory_format=self.memory_format)  # (N, C0, 4, 4)
        for name, up, dtype in self.layers:
            x = x.to(dtype)
            if up:  # (N, C, s, s) -> (N, C', 2s, 2s): nearest upsample + 3x3 conv as one transposed conv
                x = F.conv_transpose2d(x, *self._wb(name), stride=2, padding=1)
            else:  # 3x3, same size
                x = F.conv2d(x, *self._wb(name), padding=1)
            x = _pixel_norm_(F.leaky_relu_(x, slope), self.norm_acc32)
        img = F.conv2d(x.float(), *self._wb("rgb"))  # (N, image_channels, R, R)
        return img.contiguous()


def prepare_for_inference(
    gen: Generator, precision: Precision = "fp32", channels_last: bool = True, fp32_max_side: int = 16
) -> FastGenerator:
    """A FastGenerator on `gen`'s device; "bf16" falls back to fp32 (with a warning) where unsupported.

    bf16 is opt-in: it is faster only with hardware bf16 (see `bf16_native`), and its 8-bit images
    differ from fp32 by more than one grey level at a few per cent of pixels in deep networks.
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    device = next(gen.parameters()).device
    dtype = torch.float32
    if precision == "bf16":
        if bf16_supported(device):
            dtype = torch.bfloat16
        else:
            warnings.warn(f"bf16 convolutions are not supported on {device}; using fp32", stacklevel=2)
    return FastGenerator(gen, dtype=dtype, channels_last=channels_last, fp32_max_side=fp32_max_side)
