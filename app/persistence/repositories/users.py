"""Queries over users, invites and login attempts. Repositories add and flush; they never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.persistence.models import Invite, LoginAttempt, User


def by_id(session: Session, user_id: int) -> User | None:
    """The user with this id."""
    return session.get(User, user_id)


def by_email(session: Session, email: str) -> User | None:
    """The user with this (normalised) email."""
    return session.scalar(select(User).where(User.email == email))


def list_all(session: Session) -> list[User]:
    """Every user, admins first, then by name."""
    order = func.array_position(["admin", "researcher", "reader"], User.role)
    return list(session.scalars(select(User).order_by(order, User.name)))


def active_readers(session: Session) -> list[User]:
    """Readers who may be assigned to studies."""
    return list(
        session.scalars(select(User).where(User.role == "reader", User.is_active).order_by(User.name))
    )


def active_staff(session: Session) -> list[User]:
    """Researchers and admins who may collaborate on studies."""
    stmt = select(User).where(User.role.in_(("admin", "researcher")), User.is_active).order_by(User.name)
    return list(session.scalars(stmt))


def invite_by_digest(session: Session, digest: str) -> Invite | None:
    """The invite whose token hashes to `digest`, locked so it can be used once."""
    return session.scalar(select(Invite).where(Invite.token_hash == digest).with_for_update())


def lock_login(session: Session, email: str) -> None:
    """Serialise sign-ins for one email until commit, so parallel guesses cannot all pass the count."""
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext("login:" + email))))


def revoke_invites(session: Session, user_id: int, *, at: datetime) -> None:
    """Spend every unused invitation of a user (a new link replaces the old ones)."""
    session.execute(
        update(Invite).where(Invite.user_id == user_id, Invite.used_at.is_(None)).values(used_at=at)
    )


def recent_failures(
    session: Session, *, since: datetime, email: str | None = None, client: str | None = None
) -> tuple[int, datetime | None]:
    """(count, time of the latest) of failed logins since `since` for this email, client or both."""
    stmt = select(func.count(), func.max(LoginAttempt.at)).where(
        ~LoginAttempt.success, LoginAttempt.at >= since
    )
    if email is not None:
        stmt = stmt.where(LoginAttempt.email == email)
    if client is not None:
        stmt = stmt.where(LoginAttempt.client == client)
    count, last = session.execute(stmt).one()
    return int(count or 0), last
