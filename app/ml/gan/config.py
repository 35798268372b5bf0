"""The network description shared by training, snapshots and the Segal et al. converter, and the presets.

A snapshot's JSON config is `GanConfig.to_dict()`; it fully describes the generator, so a snapshot
loads without unpickling anything.

Presets (`apply_preset`): "engine" is the library's defaults, which follow Karras et al.'s PGGAN code
(tkarras/progressive_growing_of_gans) where the authors' code is silent or differs in detail; "authors"
sets what Segal et al.'s training code (BradSegal/CXR_PGGAN, PyTorch Lightning) does:

    setting                 engine                          authors (preset value)
    fromRGB activation      LeakyReLU (Karras)              none, linear 1x1 conv (from_rgb_act=False)
    minibatch-stddev group  4, within a GPU's batch         a whole per-GPU batch: 16, ..., 3 (mbstd_group=0)
    Adam eps                1e-8 (Karras)                   10e-8 = 1e-7 (adam_eps)
    batch_sizes             per GPU; global = x GPUs used   per GPU of 4; global 4 x on any GPUs (batch_gpus)
    fade reals in a fade-in no (option fade_reals: Karras)  no, as the engine
    precision               bf16 autocast on CUDA           float32 (bf16=False)
    equalised layer         scales the weight (Karras)      scales the output, bias too (scale_bias=True)
    pixels                  1 channel, [-1, 1]              3 channels (RGB loader), [0, 1] (ToTensor)

Shared by both: EMA 0.999 (app.gan_defaults.EMA_DECAY, also the New-run form's default), Adam lr 1e-3
and betas (0, 0.99), WGAN-GP lambda 10, drift 0.001, the schedule and batch sizes. Not reproduced: the
authors resize reals with PIL's bilinear filter (engine: 2 x 2 box averages), their EMA starts each new
block from its own random init, and their optimisers are built once before the network grows (engine:
fresh Adam at each resolution, as Karras et al.). The penalty runs in float32 under either preset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from app.gan_defaults import AUTHORS_GPUS, Preset
from app.ml.gan.schedule import TrainConfig
from app.ml.jsonable import JsonConfig

# The authors' channel schedule (FACTS.md): feature maps at 4, 8, 16, 32, 64, 128, 256, 512, 1024 px.
SEGAL_CHANNELS: tuple[int, ...] = (512, 512, 512, 512, 256, 128, 64, 32, 16)


@dataclass(frozen=True)
class GanConfig(JsonConfig):
    """Architecture of a PGGAN generator/discriminator pair."""

    z_dim: int = 512  # latent size; z is pixel-normalised before the first layer
    resolution: int = 1024  # final side length: a power of two, at least 4
    image_channels: int = 1  # 1 for grey films, 3 for the authors' RGB output
    # feature maps per stage, starting at 4 px; at least log2(resolution) - 1 entries are used
    channels: tuple[int, ...] = field(default=SEGAL_CHANNELS)
    leaky_slope: float = 0.2  # LeakyReLU slope everywhere
    # minibatch-stddev group size in the discriminator's last block; 0: the whole per-GPU batch of the
    # run the batch sizes describe (the authors' MinibatchSTD over each DataParallel replica's batch)
    mbstd_group: int = 4
    from_rgb_act: bool = True  # LeakyReLU after the discriminator's fromRGB (Karras); the authors': none
    # pixel range the generator is trained to produce; images map linearly from it to 0..255
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    # True reproduces the authors' equalised layer, which scales bias too (the converter sets it)
    scale_bias: bool = False

    def __post_init__(self) -> None:
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise ValueError("resolution must be a power of two, at least 4")
        if len(self.channels) < self.depth_count:
            raise ValueError(f"{self.depth_count} channel counts are needed for {self.resolution} px")
        if self.image_channels not in (1, 3):
            raise ValueError("image_channels must be 1 or 3")
        if self.mbstd_group < 0:
            raise ValueError("mbstd_group must be >= 0 (0: the whole per-GPU batch)")

    @property
    def depth_count(self) -> int:
        """Number of resolutions from 4 px to `resolution` (4 -> 1 stage, 1024 -> 9)."""
        return self.resolution.bit_length() - 2

    def size_at(self, depth: int) -> int:
        """Side length produced at `depth` (0 = 4 px)."""
        return 4 * 2**depth

    def to_json(self) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# What each preset sets: (GanConfig fields, TrainConfig fields). "engine" is the dataclasses' defaults.
_PRESET_GAN_FIELDS = ("from_rgb_act", "mbstd_group", "scale_bias", "image_channels", "pixel_range")
_PRESET_TRAIN_FIELDS = ("adam_eps", "batch_gpus", "bf16", "fade_reals")
_AUTHORS_GAN: dict[str, Any] = {
    "from_rgb_act": False,  # fromRGB is Conv_Block(..., activation=False)
    "mbstd_group": 0,  # MinibatchSTD: one statistic over each replica's whole batch
    "scale_bias": True,  # EqualizedLayer multiplies the module's output, bias included
    "image_channels": 3,  # ImageFolder loads RGB; img_channels 3
    "pixel_range": (0.0, 1.0),  # ToTensor, then Normalize(mean 0, std 1)
}
_AUTHORS_TRAIN: dict[str, Any] = {
    "adam_eps": 1e-7,  # 'eps': 10e-8
    "batch_gpus": AUTHORS_GPUS,  # batch_sizes * ngpu, split by DataParallel
    "bf16": False,  # 'set_fp16': False: float32 throughout
    "fade_reals": False,  # reals are resized to the new size from the first fade-in step
}


def preset_settings(name: Preset) -> tuple[dict[str, Any], dict[str, Any]]:
    """(GanConfig fields, TrainConfig fields) that the preset `name` sets."""
    if name == "authors":
        return dict(_AUTHORS_GAN), dict(_AUTHORS_TRAIN)
    if name == "engine":
        gan, train = GanConfig(), TrainConfig()
        return (
            {k: getattr(gan, k) for k in _PRESET_GAN_FIELDS},
            {k: getattr(train, k) for k in _PRESET_TRAIN_FIELDS},
        )
    raise ValueError(f"unknown preset {name!r}")


def apply_preset(name: Preset, gan: GanConfig, train: TrainConfig) -> tuple[GanConfig, TrainConfig]:
    """`gan` and `train` with the preset's settings; sizes, schedule, EMA and seed stay as given."""
    gan_fields, train_fields = preset_settings(name)
    return replace(gan, **gan_fields), replace(train, **train_fields)
