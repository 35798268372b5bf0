"""The New-run form of a kind, described from its pydantic config model: a field per config field.

A field's title, description and default come from the model; `json_schema_extra={"choices": ...}`
turns it into a select filled from image sets or models, `{"input": "textarea"}` into a text box of
several lines, and a date field becomes a date picker. A new kind therefore needs no template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import preferences
from app.domain.run_kinds import Kind
from app.persistence.model_store import list_models
from app.persistence.repositories import image_sets as sets_repo


@dataclass
class FormField:
    """One input of the form."""

    name: str
    label: str
    help: str
    input: str  # "number", "text", "date", "textarea" or "select"
    value: str
    required: bool
    choices: list[tuple[str, str]]
    error: str | None = None


def _choices(session: Session, source: str) -> list[tuple[str, str]]:
    if source == "image_sets":
        return [
            (str(s.id), f"{s.name} · {s.kind} · {s.image_count} images, {s.resolution} px")
            for s in sets_repo.list_all(session)
        ]
    if source == "classifiers":
        return [
            (
                s.name,
                f"{s.name} · {len(s.manifest.get('findings', []))} findings"
                + (" · bundled" if s.bundled else ""),
            )
            for s in list_models(get_settings().models_dir, kind="classifier")
        ]
    if source == "models":
        return [
            (s.name, f"{s.name} · {s.resolution} px" + (" · bundled" if s.bundled else ""))
            for s in list_models(get_settings().models_dir)
        ]
    raise ValueError(f"unknown choices source {source}")


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def _input(info: FieldInfo) -> tuple[str, list[tuple[str, str]]]:
    annotation = info.annotation
    if annotation is date or (get_origin(annotation) is not None and date in get_args(annotation)):
        return "date", []
    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("input") == "textarea":
        return "textarea", []
    if annotation is bool:
        return "select", [("false", "no"), ("true", "yes")]
    if get_origin(annotation) is Literal:
        return "select", [(str(v), str(v)) for v in get_args(annotation)]
    if annotation in (int, float) or (get_origin(annotation) is not None and int in get_args(annotation)):
        return "number", []
    return "text", []


def describe(
    session: Session, kind: Kind, values: dict[str, Any], errors: dict[str, str] | None = None
) -> list[FormField]:
    """The form's fields with the posted values (or the defaults) and any errors."""
    defaults = {"model": preferences.get(session, preferences.DEFAULT_MODEL)}
    # Posted values come back as text; "True" from a re-rendered form must still select "true".
    values = {
        k: (v.lower() if isinstance(v, str) and v in ("True", "False") else v) for k, v in values.items()
    }
    fields = []
    for name, info in kind.config.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        input_type, choices = _input(info)
        if "choices" in extra:
            input_type, choices = "select", _choices(session, str(extra["choices"]))
        if name in values:
            value = _shown(values[name])
        elif not info.is_required():
            value = _shown(info.get_default(call_default_factory=True))
        else:
            value = _shown(defaults.get(name))
        fields.append(
            FormField(
                name=name,
                label=info.title or name,
                help=info.description or "",
                input=input_type,
                value=value,
                required=info.is_required(),
                choices=choices,
                error=(errors or {}).get(name),
            )
        )
    # Required fields first (what the run works on: sets and models, then names), then the settings.
    return sorted(fields, key=lambda f: (not f.required, f.input != "select"))
