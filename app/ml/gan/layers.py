"""Building blocks of Progressive Growing GANs (Karras et al., ICLR 2018).

Equalised learning rate: weights are stored N(0, 1) and multiplied at run time by He's constant
sqrt(2 / fan_in), so every layer learns at the same speed under Adam. The authors of the chest X-ray
model (Segal et al. 2021) multiply the layer's whole output by that constant, bias included;
`scale_bias=True` reproduces that variant (FACTS.md "Trap").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PIXEL_NORM_EPS = 1e-8  # the authors' and Karras et al.'s epsilon


def he_scale(fan_in: int) -> float:
    """He's constant sqrt(2 / fan_in) used by every equalised layer."""
    return math.sqrt(2.0 / fan_in)


class _Equalized(nn.Module):
    """Shared state of equalised layers: an N(0, 1) weight, a zero bias and the run-time scale."""

    weight: nn.Parameter
    bias: nn.Parameter

    def __init__(self, weight_shape: tuple[int, ...], scale_bias: bool) -> None:
        super().__init__()
        # Drawn from torch's global RNG, so a caller's torch.manual_seed makes init reproducible.
        self.weight = nn.Parameter(torch.randn(weight_shape))
        self.bias = nn.Parameter(torch.zeros(weight_shape[0]))
        self.scale = he_scale(math.prod(weight_shape[1:]))
        self.scale_bias = scale_bias

    def effective_weight(self) -> Tensor:
        """The weight the layer actually applies: stored weight * sqrt(2 / fan_in)."""
        return self.weight * self.scale

    def effective_bias(self) -> Tensor:
        """The bias the layer actually adds (scaled too when `scale_bias`)."""
        return self.bias * self.scale if self.scale_bias else self.bias


class EqualizedConv2d(_Equalized):
    """Conv2d with equalised learning rate; zero padding keeps the size for odd kernels unless given."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, padding: int | None = None, scale_bias: bool = False
    ) -> None:
        super().__init__((out_ch, in_ch, kernel, kernel), scale_bias)
        self.padding = kernel // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H', W')."""
        if self.scale_bias:
            # The authors' order of operations (scale the output), so converted weights match bit for bit.
            return F.conv2d(x, self.weight, self.bias, padding=self.padding) * self.scale
        return F.conv2d(x, self.effective_weight(), self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        out_ch, in_ch, k, _ = self.weight.shape
        return f"{in_ch}, {out_ch}, kernel={k}, padding={self.padding}, scale_bias={self.scale_bias}"


class EqualizedLinear(_Equalized):
    """Linear layer with equalised learning rate."""

    def __init__(self, in_features: int, out_features: int, scale_bias: bool = False) -> None:
        super().__init__((out_features, in_features), scale_bias)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_features) -> (N, out_features)."""
        if self.scale_bias:
            return F.linear(x, self.weight, self.bias) * self.scale
        return F.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"{in_f}, {out_f}, scale_bias={self.scale_bias}"


class PixelNorm(nn.Module):
    """Normalises each pixel's feature vector to unit root-mean-square over channels (dim 1)."""

    def __init__(self, eps: float = PIXEL_NORM_EPS) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, ...) -> same shape, mean of squares over C equal to 1 (up to eps)."""
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the mean over features of the per-group standard deviation.

    Samples are split into consecutive groups of `group_size`; a batch that is not a multiple of the
    group size keeps a smaller last group (merged into the previous one when it would hold a single
    sample, whose deviation would be zero). `group_size` 0 takes the whole batch as one group, as the
    authors' MinibatchSTD does (training sets the size per stage, see train.py).
    """

    def __init__(self, group_size: int = 4, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.eps = eps

    def _group_std(self, x: Tensor) -> Tensor:
        # x: (G, M, C, H, W), M groups of G samples -> (M,), one statistic per group
        var = x.float().var(dim=0, unbiased=False)
        return torch.sqrt(var + self.eps).mean(dim=(1, 2, 3))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C + 1, H, W)."""
        n, _, h, w = x.shape
        g = n if self.group_size == 0 else min(self.group_size, n)
        if n % g == 0:
            # Sample k belongs to group k % (n // g), as in Karras et al.'s reshape.
            stats = self._group_std(x.reshape(g, n // g, *x.shape[1:]))  # (n // g,)
            per_sample = stats.repeat(g)  # (n,)
        else:
            sizes = [g] * (n // g)
            rest = n - sum(sizes)
            if rest == 1:
                sizes[-1] += 1
            elif rest:
                sizes.append(rest)
            chunks = torch.split(x, sizes)
            per_sample = torch.cat([self._group_std(c.unsqueeze(1)).expand(len(c)) for c in chunks])  # (n,)
        feat = per_sample.to(x.dtype).view(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, feat], dim=1)
