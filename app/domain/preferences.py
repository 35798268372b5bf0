"""Site-wide choices admins make (the default model for sampling); one JSON value per key."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.domain import audit_trail
from app.persistence.repositories import preferences as repo

DEFAULT_MODEL = "default_model"


def get(session: Session, key: str, default: Any = None) -> Any:
    """The stored value, or `default`."""
    row = repo.get(session, key)
    return default if row is None else row.value


def put(session: Session, key: str, value: Any, *, actor_id: int) -> None:
    """Store a value (the caller commits)."""
    old = get(session, key)
    repo.upsert(session, key, value)
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="set",
        entity="preference",
        entity_id=key,
        old={"v": old},
        new={"v": value},
    )
