"""Appending to the audit trail. Never commits; rows are never changed (a trigger refuses)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.persistence.models import AuditEvent

# A Core INSERT on the table, built once: an ORM object added to the session would cost a unit-of-work
# flush on every answer a reader submits, and nothing reads the row back.
_APPEND = insert(AuditEvent.__table__)


def append(session: Session, values: dict[str, Any]) -> None:
    """Insert one audit event now, in the session's transaction."""
    session.execute(_APPEND, values)
