"""One JSON form for the library's frozen config dataclasses (GanConfig, TrainConfig, ClassifierConfig,
ClassifierTrainConfig, LcoConfig).

Snapshots and run records store configs as JSON, which has no tuples: a tuple field goes out as a list and
comes back as a tuple, so a config survives the round trip equal to itself (training resumes only when
the stored GanConfig equals the one asked for). Unknown keys stay an error: they mean a newer format.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self


class JsonConfig:
    """Mixin for a frozen dataclass: `to_dict` (JSON-ready) and its inverse `from_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: each tuple field as a list."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The config `to_dict` described; a field annotated as a tuple gets its list back as a tuple."""
        tuples = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})
