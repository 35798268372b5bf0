"""Server-side sessions: how a signed-in browser is recognised, and every way its session ends.

The cookie (signed by Starlette) carries only a random token; the server keeps the token's SHA-256 in
web_sessions, so ending a session is a row update that every web process sees at once, and a copied cookie
is worth nothing after logout. Two clocks end a session by themselves (OWASP ASVS 3.3.2: re-authenticate
after 12 hours, or 30 minutes idle): an absolute lifetime counted from sign-in, which activity never
extends, and an idle timeout counted from the last request. Recording "last request" on every request
would put a write on the reader's hot path (page, image, submit), so it is written at most every
`touch_every_s`, a small fraction of the idle timeout; the timeout is then honoured to within that.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.domain import audit_trail
from app.persistence.models import User
from app.persistence.repositories import web_sessions as repo

# Ended and stale rows are kept this long for the admin's view, then forgotten at the next sign-in.
KEEP_ENDED = timedelta(days=30)


@dataclass(frozen=True)
class SessionPolicy:
    """The two clocks that end a session, in seconds."""

    lifetime_s: int  # from sign-in, however active the user is
    idle_s: int  # from the last request

    @property
    def touch_every_s(self) -> float:
        """How stale the recorded last request may grow before a request rewrites it."""
        return min(60.0, self.idle_s / 10)


@dataclass(frozen=True)
class Resolved:
    """Who a request's token belongs to, or why it no longer belongs to anyone."""

    user: User | None
    ended: str | None = None  # "expired" or "idle" when a clock ended it just now; shown at sign-in


def digest(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, *, client: str, user_agent: str, now: datetime | None = None) -> str:
    """Open a session for `user` and return its token (the cookie's only secret)."""
    now = now or datetime.now(UTC)
    repo.prune(session, before=now - KEEP_ENDED)
    token = secrets.token_urlsafe(32)
    repo.add(
        session, token_hash=digest(token), user_id=user.id, client=client[:64], user_agent=user_agent[:200]
    )
    return token


def resolve(session: Session, token: str, policy: SessionPolicy, *, now: datetime | None = None) -> Resolved:
    """The active user behind `token`; ends the session if a clock ran out. The caller commits when the
    session is dirty (a touch or an ending), which happens at most every `touch_every_s`."""
    now = now or datetime.now(UTC)
    found = repo.with_user(session, digest(token))
    if found is None:
        return Resolved(None)
    row, user = found
    if row.ended_at is not None or not user.is_active:
        return Resolved(None)
    for reason, since, limit in (
        ("expired", row.created_at, policy.lifetime_s),
        ("idle", row.last_seen_at, policy.idle_s),
    ):
        if (now - since).total_seconds() > limit:
            row.ended_at, row.end_reason = now, reason
            return Resolved(None, ended=reason)
    if (now - row.last_seen_at).total_seconds() > policy.touch_every_s:
        row.last_seen_at = now
    return Resolved(user)


def end(session: Session, token: str) -> None:
    """End one session (sign-out)."""
    repo.end_open(session, at=datetime.now(UTC), reason="logout", token_hash=digest(token))


def end_all(session: Session, user_id: int, *, reason: str, actor_id: int | None = None) -> int:
    """End every open session of a user (deactivation, a new password, an admin's request); returns how
    many ended. An admin's request is audited; the other reasons are audited by what caused them."""
    n = repo.end_open(session, at=datetime.now(UTC), reason=reason, user_id=user_id)
    if reason == "admin":
        audit_trail.record(
            session,
            actor_id=actor_id,
            action="end_sessions",
            entity="user",
            entity_id=user_id,
            new={"ended": n},
        )
    return n


def open_counts(session: Session, policy: SessionPolicy, *, now: datetime | None = None) -> dict[int, int]:
    """Open sessions per user id, for the admin's user list."""
    now = now or datetime.now(UTC)
    return repo.open_counts(
        session,
        created_after=now - timedelta(seconds=policy.lifetime_s),
        seen_after=now - timedelta(seconds=policy.idle_s),
    )
