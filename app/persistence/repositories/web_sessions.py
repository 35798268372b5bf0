"""Queries over signed-in browsers (web_sessions). Repositories add and flush; they never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from app.persistence.models import User, WebSession


def add(session: Session, *, token_hash: str, user_id: int, client: str, user_agent: str) -> WebSession:
    """Record a new session."""
    row = WebSession(token_hash=token_hash, user_id=user_id, client=client, user_agent=user_agent)
    session.add(row)
    session.flush()
    return row


# Built once, with a bound parameter: every request runs it.
_WITH_USER = (
    select(WebSession, User)
    .join(User, User.id == WebSession.user_id)
    .where(WebSession.token_hash == bindparam("token_hash"))
)


def with_user(session: Session, token_hash: str) -> tuple[WebSession, User] | None:
    """The session whose token hashes to `token_hash` and its user, in one query (every request asks)."""
    row = session.execute(_WITH_USER, {"token_hash": token_hash}).first()
    return (row[0], row[1]) if row else None


def end_open(
    session: Session, *, at: datetime, reason: str, user_id: int | None = None, token_hash: str | None = None
) -> int:
    """End the open sessions of a user or the one with this token; returns how many ended."""
    stmt = update(WebSession).where(WebSession.ended_at.is_(None))
    if user_id is not None:
        stmt = stmt.where(WebSession.user_id == user_id)
    if token_hash is not None:
        stmt = stmt.where(WebSession.token_hash == token_hash)
    return session.execute(stmt.values(ended_at=at, end_reason=reason)).rowcount


def open_counts(session: Session, *, created_after: datetime, seen_after: datetime) -> dict[int, int]:
    """Open sessions per user: not ended, within their lifetime and not idle past the timeout."""
    stmt = (
        select(WebSession.user_id, func.count())
        .where(
            WebSession.ended_at.is_(None),
            WebSession.created_at > created_after,
            WebSession.last_seen_at > seen_after,
        )
        .group_by(WebSession.user_id)
    )
    return {user_id: n for user_id, n in session.execute(stmt)}


def prune(session: Session, *, before: datetime) -> None:
    """Forget sessions that ended, or were last seen, before `before` (they can no longer matter)."""
    last = func.coalesce(WebSession.ended_at, WebSession.last_seen_at)
    session.execute(delete(WebSession).where(last < before))
