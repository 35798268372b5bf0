"""An independent forward of the authors' generator (Segal et al. 2021), on the raw state dict.

Written from FACTS.md's description of `Final_Full_Model.pth`, with plain functional torch and none of
app.ml.gan, so the converter is checked against something it does not share code with. The benchmark
uses it as the baseline too.

Layout uncertainties (FACTS.md calls the layout inferred from the authors' save code):
- `latent_linear` is Sequential(equalised Linear, LeakyReLU) and the reshape to (C0, 4, 4) follows it.
  The activation is elementwise, so reshaping before or after it gives the same numbers.
- Every equalised layer multiplies its whole output (bias included) by sqrt(2 / fan_in) with gain
  sqrt(2) everywhere, toRGB included (the official PGGAN uses gain 1 for toRGB; the authors do not).
- Convolutions use zero padding 1 for 3x3 and 0 for 1x1; upsampling is nearest-neighbour (the authors'
  default mode "nearest").
- The authors' fade-in runs the other way round from ours: their `alpha` = 1 shows only the upsampled
  previous depth. A finished model stores alpha = 0, and this forward ignores alpha.
- A real checkpoint may hold fp16 tensors; this forward computes in the tensors' dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

SLOPE = 0.2
EPS = 1e-8


def _pixel_norm(x: Tensor) -> Tensor:
    return x * (x.pow(2).mean(dim=1, keepdim=True) + EPS).rsqrt()


def _he(weight: Tensor) -> float:
    return math.sqrt(2.0 / math.prod(weight.shape[1:]))


def _conv(sd: dict[str, Tensor], key: str, x: Tensor) -> Tensor:
    w, b = sd[key + ".weight"], sd[key + ".bias"]
    y = F.conv2d(x, w, b, padding=w.shape[-1] // 2)
    y *= _he(w)  # the authors scale the output in place, bias included
    return y


def _count_blocks(sd: dict[str, Tensor], prefix: str) -> int:
    n = 0
    while f"{prefix}ScaleBlocks.{n}.convolv.0.module.weight" in sd:
        n += 1
    return n


def reference_forward(sd: dict[str, Tensor], z: Tensor, prefix: str = "gen_shadow.") -> Tensor:
    """The authors' generator at its full depth: z (N, Z) -> images (N, 3, 4 * 2**n, 4 * 2**n)."""
    p = prefix
    x = _pixel_norm(z)
    w, b = sd[p + "latent_linear.0.module.weight"], sd[p + "latent_linear.0.module.bias"]
    x = F.linear(x, w, b)
    x *= _he(w)
    F.leaky_relu_(x, SLOPE)
    x = x.view(z.shape[0], -1, 4, 4)  # (N, C0, 4, 4)
    x = _pixel_norm(F.leaky_relu_(_conv(sd, p + "init_conv.0.module", x), SLOPE))
    n = _count_blocks(sd, p)
    for i in range(n):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        for j in (0, 3):  # convolv = [conv, LReLU, PixelNorm, conv, LReLU, PixelNorm]
            x = _pixel_norm(F.leaky_relu_(_conv(sd, f"{p}ScaleBlocks.{i}.convolv.{j}.module", x), SLOPE))
    return _conv(sd, f"{p}toRGB.{n}.module", x)


def authors_state_dict(
    channels: Sequence[int], z_dim: int = 512, image_channels: int = 3, seed: int = 0
) -> dict[str, Tensor]:
    """Random weights under the authors' key names for `gen_shadow.`, `generator.` and `discriminator.`.

    `channels[d]` is the width at depth d; len(channels) - 1 growth blocks give 4 * 2**n px. Weights are
    N(0, 1) as the authors store them; biases are small random values so that bias scaling matters.
    """
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, std: float = 1.0) -> Tensor:
        return torch.randn(shape, generator=gen) * std

    def conv(key: str, cin: int, cout: int, k: int) -> dict[str, Tensor]:
        return {key + ".weight": rnd(cout, cin, k, k), key + ".bias": rnd(cout, std=0.1)}

    c0, n = channels[0], len(channels) - 1
    g: dict[str, Tensor] = {
        "current_size": torch.tensor(4 * 2**n),
        "current_depth": torch.tensor(n),
        "alpha": torch.tensor(0.0),
        "latent_linear.0.module.weight": rnd(16 * c0, z_dim),
        "latent_linear.0.module.bias": rnd(16 * c0, std=0.1),
    }
    g |= conv("init_conv.0.module", c0, c0, 3)
    for i in range(n):
        g |= conv(f"ScaleBlocks.{i}.convolv.0.module", channels[i], channels[i + 1], 3)
        g |= conv(f"ScaleBlocks.{i}.convolv.3.module", channels[i + 1], channels[i + 1], 3)
    for d in range(n + 1):
        g |= conv(f"toRGB.{d}.module", channels[d], image_channels, 1)
    sd = {f"gen_shadow.{k}": v for k, v in g.items()}
    # The raw generator differs from its EMA shadow, so picking the wrong prefix shows up.
    sd |= {f"generator.{k}": v + 0.5 if v.is_floating_point() else v for k, v in g.items()}
    sd |= conv("discriminator.fromRGB.0.module", image_channels, c0, 1)
    sd |= conv("discriminator.DecisionBlock.0.module", c0 + 1, c0, 3)
    sd |= {"alpha": torch.tensor(0.0), "img_size": torch.tensor(4 * 2**n), "scale": torch.tensor(n)}
    return sd


def authors_checkpoint(channels: Sequence[int], seed: int = 0) -> dict[str, object]:
    """The whole `Final_Full_Model.pth` dict: `state_dict` plus the `settings` tensors."""
    n = len(channels) - 1
    settings = {
        k: torch.tensor(v)
        for k, v in {
            "alpha": 0.0, "g_size": 4 * 2**n, "g_depth": n, "g_alpha": 0.0, "d_size": 4 * 2**n,
            "d_depth": n, "d_alpha": 0.0, "total_iter": 1000, "current_iter": 10, "num_images_seen": 16000,
            "iter_images_seen": 160, "g_current_iter": 1000, "d_current_iter": 1000,
        }.items()
    }  # fmt: skip
    settings["fixed_z"] = torch.randn(16, 512, generator=torch.Generator().manual_seed(seed))
    return {"state_dict": authors_state_dict(channels, seed=seed), "settings": settings}


def calibrate_output(sd: dict[str, Tensor], z: Tensor, mean: float = 0.5, std: float = 0.2) -> None:
    """Rescale the last toRGB in place so the reference's images have about this mean and std.

    Random weights give outputs far outside the authors' [0, 1] range, which would clip most 8-bit
    pixels and hide precision differences; the trained model's images span that range.
    """
    n = _count_blocks(sd, "gen_shadow.")
    key = f"gen_shadow.toRGB.{n}.module"
    with torch.no_grad():
        out = reference_forward(sd, z)  # (N, 3, R, R)
        k = std / float(out.std())
        he = _he(sd[key + ".weight"])
        # output = he * (W x + b): scaling W and b by k scales the output; the bias shift adds the rest
        sd[key + ".weight"] = sd[key + ".weight"] * k
        sd[key + ".bias"] = sd[key + ".bias"] * k + (mean - k * float(out.mean())) / he
