"""Queries over site-wide preferences. Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.persistence.models import Preference


def get(session: Session, key: str) -> Preference | None:
    """The stored preference row."""
    return session.get(Preference, key)


def upsert(session: Session, key: str, value: Any) -> None:
    """Store a value under `key`, replacing any there."""
    stmt = insert(Preference).values(key=key, value=value, updated_at=func.now())
    session.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": func.now()})
    )
