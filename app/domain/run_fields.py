"""What every kind of run's config shares: the base model, the name pattern and the form-field coercions.

Form fields arrive as text; these validators turn a blank into None, "16,16,8" into a list and "64" into a
number, so that one config model serves the New-run form and JSON alike.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from app.domain.ids import DbId

NAME_RE = r"^[a-z0-9][a-z0-9._-]{0,79}$"


def int_list(value: Any) -> Any:
    """Accept "16,16,8" from a form field as well as a JSON list."""
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
        return parts
    return value


def blank_is_none(value: Any) -> Any:
    """A blank form field means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


def numeric(value: Any) -> Any:
    """Form fields arrive as text; a choice among numbers must still match."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


IntList = Annotated[tuple[int, ...], BeforeValidator(int_list)]
OptionalInt = Annotated[int | None, BeforeValidator(blank_is_none)]
OptionalId = Annotated[DbId | None, BeforeValidator(blank_is_none)]


class RunConfig(BaseModel):
    """Base of every kind's config: unknown fields are refused, values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
