"""Generator and discriminator of a Progressive Growing GAN (Karras et al., ICLR 2018).

Both networks hold every resolution from 4 px to `cfg.resolution`; `depth` picks how many growth
blocks run (depth 0 = 4 px) and `alpha` fades the newest block in. Layer order follows Segal et al.
2021 (FACTS.md), which is Karras et al.'s: PixelNorm(z) -> Linear -> LReLU -> reshape -> conv -> LReLU
-> PixelNorm, then per block upsample, (conv, LReLU, PixelNorm) x 2, and a linear toRGB per depth.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from app.ml.gan.config import GanConfig
from app.ml.gan.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm


def _check_depth(cfg: GanConfig, depth: int | None, alpha: float) -> tuple[int, float]:
    depth = cfg.depth_count - 1 if depth is None else int(depth)
    if not 0 <= depth < cfg.depth_count:
        raise ValueError(f"depth must be in [0, {cfg.depth_count - 1}], got {depth}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return depth, alpha


class GeneratorBlock(nn.Module):
    """Doubles the side: nearest x2 upsample, then two (3x3 conv, LReLU, PixelNorm)."""

    def __init__(self, in_ch: int, out_ch: int, slope: float, scale_bias: bool) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_ch, out_ch, 3, scale_bias=scale_bias)
        self.conv2 = EqualizedConv2d(out_ch, out_ch, 3, scale_bias=scale_bias)
        self.norm = PixelNorm()
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_ch, s, s) -> (N, out_ch, 2s, 2s)."""
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(F.leaky_relu(self.conv1(x), self.slope))
        return self.norm(F.leaky_relu(self.conv2(x), self.slope))


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, image_channels, 4 * 2**depth, 4 * 2**depth), linear output."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch, sb, slope = cfg.channels, cfg.scale_bias, cfg.leaky_slope
        self.norm = PixelNorm()
        self.latent = EqualizedLinear(cfg.z_dim, ch[0] * 16, scale_bias=sb)
        self.init_conv = EqualizedConv2d(ch[0], ch[0], 3, scale_bias=sb)
        self.blocks = nn.ModuleList(
            GeneratorBlock(ch[d - 1], ch[d], slope, sb) for d in range(1, cfg.depth_count)
        )
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(ch[d], cfg.image_channels, 1, scale_bias=sb) for d in range(cfg.depth_count)
        )

    def features(self, z: Tensor, depth: int) -> tuple[Tensor, Tensor | None]:
        """Feature maps at `depth` and, for depth > 0, at depth - 1 (the fade-in's other input)."""
        if z.ndim != 2 or z.shape[1] != self.cfg.z_dim:
            raise ValueError(f"z must be (N, {self.cfg.z_dim}), got {tuple(z.shape)}")
        slope = self.cfg.leaky_slope
        x = F.leaky_relu(self.latent(self.norm(z)), slope)  # (N, C0 * 16)
        x = x.view(z.shape[0], self.cfg.channels[0], 4, 4)  # (N, C0, 4, 4)
        x = self.norm(F.leaky_relu(self.init_conv(x), slope))
        prev = None
        for block in self.blocks[:depth]:
            prev, x = x, block(x)  # side doubles each block
        return x, prev

    def forward(self, z: Tensor, depth: int | None = None, alpha: float = 1.0) -> Tensor:
        """Images at `depth` (None = full resolution); alpha < 1 blends in the upsampled previous depth."""
        depth, alpha = _check_depth(self.cfg, depth, alpha)
        x, prev = self.features(z, depth)
        img = self.to_rgb[depth](x)
        if prev is None or alpha == 1.0:
            return img
        old = F.interpolate(self.to_rgb[depth - 1](prev), scale_factor=2, mode="nearest")
        return old.lerp(img, alpha)  # alpha = 0: the previous depth's image, upsampled


class DiscriminatorBlock(nn.Module):
    """Halves the side: (3x3 conv, LReLU) x 2, then 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int, slope: float, scale_bias: bool) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_ch, in_ch, 3, scale_bias=scale_bias)
        self.conv2 = EqualizedConv2d(in_ch, out_ch, 3, scale_bias=scale_bias)
        self.slope = slope

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_ch, s, s) -> (N, out_ch, s/2, s/2)."""
        x = F.leaky_relu(self.conv1(x), self.slope)
        x = F.leaky_relu(self.conv2(x), self.slope)
        return F.avg_pool2d(x, 2)


class Discriminator(nn.Module):
    """Images (N, image_channels, s, s) at `depth` -> one critic score per image (N,)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch, sb, slope = cfg.channels, cfg.scale_bias, cfg.leaky_slope
        self.from_rgb = nn.ModuleList(
            EqualizedConv2d(cfg.image_channels, ch[d], 1, scale_bias=sb) for d in range(cfg.depth_count)
        )
        # blocks[d - 1] takes depth d's maps (ch[d], s_d) down to depth d - 1's (ch[d - 1], s_d / 2)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(ch[d], ch[d - 1], slope, sb) for d in range(1, cfg.depth_count)
        )
        self.mbstd = MinibatchStdDev(cfg.mbstd_group)
        self.final_conv = EqualizedConv2d(ch[0] + 1, ch[0], 3, scale_bias=sb)
        self.final_valid = EqualizedConv2d(ch[0], ch[0], 4, padding=0, scale_bias=sb)  # 4x4 -> 1x1
        self.score = EqualizedLinear(ch[0], 1, scale_bias=sb)

    def _from_rgb(self, x: Tensor, depth: int) -> Tensor:
        """Image -> feature maps of `depth`: 1x1 conv, then LeakyReLU unless cfg.from_rgb_act is off."""
        h = self.from_rgb[depth](x)
        return F.leaky_relu(h, self.cfg.leaky_slope) if self.cfg.from_rgb_act else h

    def forward(self, x: Tensor, depth: int | None = None, alpha: float = 1.0) -> Tensor:
        """Critic scores (N,); alpha < 1 blends in the depth - 1 path fed the 2x2-pooled image."""
        depth, alpha = _check_depth(self.cfg, depth, alpha)
        side = self.cfg.size_at(depth)
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.cfg.image_channels, side, side):
            raise ValueError(
                f"x must be (N, {self.cfg.image_channels}, {side}, {side}) at depth {depth}, "
                f"got {tuple(x.shape)}"
            )
        slope = self.cfg.leaky_slope
        h = self._from_rgb(x, depth)  # (N, ch[depth], side, side)
        if depth > 0:
            h = self.blocks[depth - 1](h)  # (N, ch[depth - 1], side / 2, side / 2)
            if alpha < 1.0:
                old = self._from_rgb(F.avg_pool2d(x, 2), depth - 1)
                h = old.lerp(h, alpha)
        for d in range(depth - 1, 0, -1):
            h = self.blocks[d - 1](h)
        h = self.mbstd(h)  # (N, ch[0] + 1, 4, 4)
        h = F.leaky_relu(self.final_conv(h), slope)
        h = F.leaky_relu(self.final_valid(h), slope)  # (N, ch[0], 1, 1)
        return self.score(h.flatten(1)).squeeze(1)
