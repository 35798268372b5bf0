"""The audit trail: every write that matters adds a row; rows are never changed (a trigger refuses)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.persistence.repositories import audit_events


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: int | str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
    """Append one audit event in the session's transaction (the caller commits)."""
    audit_events.append(
        session,
        {
            "actor_id": actor_id,
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
            "old": old,
            "new": new,
        },
    )
