"""The network description shared by training, snapshots and the Segal et al. converter.

A snapshot's JSON config is `GanConfig.to_dict()`; it fully describes the generator, so a snapshot
loads without unpickling anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# The authors' channel schedule (FACTS.md): feature maps at 4, 8, 16, 32, 64, 128, 256, 512, 1024 px.
SEGAL_CHANNELS: tuple[int, ...] = (512, 512, 512, 512, 256, 128, 64, 32, 16)


@dataclass(frozen=True)
class GanConfig:
    """Architecture of a PGGAN generator/discriminator pair."""

    z_dim: int = 512  # latent size; z is pixel-normalised before the first layer
    resolution: int = 1024  # final side length: a power of two, at least 4
    image_channels: int = 1  # 1 for grey films, 3 for the authors' RGB output
    # feature maps per stage, starting at 4 px; at least log2(resolution) - 1 entries are used
    channels: tuple[int, ...] = field(default=SEGAL_CHANNELS)
    leaky_slope: float = 0.2  # LeakyReLU slope everywhere
    mbstd_group: int = 4  # minibatch-stddev group size in the discriminator's last block
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

    @property
    def depth_count(self) -> int:
        """Number of resolutions from 4 px to `resolution` (4 -> 1 stage, 1024 -> 9)."""
        return self.resolution.bit_length() - 2

    def size_at(self, depth: int) -> int:
        """Side length produced at `depth` (0 = 4 px)."""
        return 4 * 2**depth

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["pixel_range"] = list(self.pixel_range)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        """The config a snapshot stored; unknown keys are an error (a newer format)."""
        data = dict(data)
        data["channels"] = tuple(data["channels"])
        data["pixel_range"] = tuple(data["pixel_range"])
        return cls(**data)

    def to_json(self) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)
