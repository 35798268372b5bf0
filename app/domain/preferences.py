"""Site-wide choices admins make (the default model for sampling); one JSON value per key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.domain import audit
from app.persistence.models import Preference

DEFAULT_MODEL = "default_model"


def get(session: Session, key: str, default: Any = None) -> Any:
    """The stored value, or `default`."""
    row = session.get(Preference, key)
    return default if row is None else row.value


def put(session: Session, key: str, value: Any, *, actor_id: int) -> None:
    """Store a value (the caller commits)."""
    old = get(session, key)
    stmt = insert(Preference).values(key=key, value=value, updated_at=func.now())
    session.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": func.now()})
    )
    audit.record(
        session,
        actor_id=actor_id,
        action="set",
        entity="preference",
        entity_id=key,
        old={"v": old},
        new={"v": value},
    )
