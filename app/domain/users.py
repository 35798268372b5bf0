"""Accounts: creation, invitations, sign-in with rate limiting, deactivation and the reader intake."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain import audit_trail, passwords, web_sessions
from app.domain.errors import Conflict, Invalid, NotFound, TooMany
from app.domain.security import (
    hash_password,
    new_pseudonym,
    new_token,
    token_digest,
    verify_password,
)
from app.persistence.models import ROLES, Invite, LoginAttempt, User
from app.persistence.repositories import users as repo


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or " " in email:
        raise Invalid(f"'{email}' is not an email address.")
    return email


def _check_password(password: str, *, hints: tuple[str, ...] = ()) -> None:
    found = passwords.problem(password, hints=hints)
    if found:
        raise Invalid(found)


def create_user(
    session: Session,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    actor_id: int | None = None,
) -> User:
    """Add a user; without a password the account waits for an invitation to be accepted."""
    if role not in ROLES:
        raise Invalid(f"Unknown role '{role}'; choose one of {', '.join(ROLES)}.")
    email = normalise_email(email)
    name = name.strip() or email.split("@")[0]
    if repo.by_email(session, email) is not None:
        raise Conflict(f"A user with email {email} already exists.")
    if password is not None:
        _check_password(password, hints=(email, name))
    user = User(
        email=email,
        name=name,
        role=role,
        pseudonym=new_pseudonym(),
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create with the same email
        raise Conflict(f"A user with email {email} already exists.") from exc
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="create",
        entity="user",
        entity_id=user.id,
        new={"email": email, "role": role},
    )
    return user


def invite(session: Session, user: User, *, ttl_hours: int, actor_id: int | None) -> str:
    """Create a one-time invitation for `user`; returns the token (only its hash is stored)."""
    token = new_token()
    repo.revoke_invites(session, user.id, at=datetime.now(UTC))
    session.add(
        Invite(
            user_id=user.id,
            token_hash=token_digest(token),
            created_by_id=actor_id,
            expires_at=datetime.now(UTC) + timedelta(hours=ttl_hours),
        )
    )
    audit_trail.record(session, actor_id=actor_id, action="invite", entity="user", entity_id=user.id)
    return token


def pending_invite(session: Session, token: str) -> tuple[Invite, User]:
    """The still-valid invitation for `token` and its user, or NotFound."""
    inv = repo.invite_by_digest(session, token_digest(token))
    if inv is None or inv.used_at is not None or inv.expires_at < datetime.now(UTC):
        raise NotFound(
            "This invitation link is invalid, expired or already used. Ask an admin for a new one."
        )
    user = repo.by_id(session, inv.user_id)
    if user is None or not user.is_active:
        raise NotFound("This invitation link is no longer valid.")
    return inv, user


def accept_invite(session: Session, token: str, *, password: str) -> User:
    """Set the password of an invited user and spend the invitation."""
    inv, user = pending_invite(session, token)
    _check_password(password, hints=(user.email, user.name))
    user.password_hash = hash_password(password)
    inv.used_at = datetime.now(UTC)
    # A reset password ends whoever held the old one.
    web_sessions.end_all(session, user.id, reason="password")
    audit_trail.record(session, actor_id=user.id, action="accept_invite", entity="user", entity_id=user.id)
    return user


@dataclass(frozen=True)
class LoginLimits:
    """Failures tolerated before sign-in slows down, and how long failures are remembered."""

    max_failures: int  # free failures per account and address; 4x per address, 20x per account
    window_s: int  # failures older than this are forgotten; also the longest wait


def throttle_wait(failures: int, free: int, since_last_s: float, window_s: int) -> float:
    """Seconds still to wait before the next try: none for the first `free` failures, then 2, 4, 8, …
    seconds after the last failure (doubling with each, at most the window)."""
    if failures < free:
        return 0.0
    delay = min(2.0 ** (failures - free + 1), float(window_s))
    return max(delay - since_last_s, 0.0)


def authenticate(
    session: Session, *, email: str, password: str, client: str, limits: LoginLimits
) -> User | None:
    """The active user with these credentials, or None; raises TooMany while a try must wait.

    Throttled, never locked (OWASP ASVS 2.2): failures slow down the address they come from for that
    account (after `max_failures`), that address for any account (after 4x, a credential-stuffing list),
    and the account from everywhere only after 20x (a guess spread over many addresses). So a wrong
    password typed five times elsewhere never keeps the radiologist out; the attacker waits longer with
    each failure.
    """
    email = email.strip().lower()[:320]
    client = client[:64]
    repo.lock_login(session, email)
    now = datetime.now(UTC)
    since = now - timedelta(seconds=limits.window_s)
    free = limits.max_failures
    for scope, n_free in (
        ({"email": email, "client": client}, free),
        ({"client": client}, 4 * free),
        ({"email": email}, 20 * free),
    ):
        failures, last = repo.recent_failures(session, since=since, **scope)
        since_last = (now - last).total_seconds() if last else float(limits.window_s)
        wait = throttle_wait(failures, n_free, since_last, limits.window_s)
        if wait > 0:
            raise TooMany(f"Too many failed sign-in attempts. Wait {math.ceil(wait)} seconds and try again.")
    user = repo.by_email(session, email)
    ok = (
        verify_password(user.password_hash if user else None, password)
        and user is not None
        and user.is_active
    )
    session.add(LoginAttempt(email=email, client=client, success=ok))
    if not ok:
        return None
    assert user is not None
    user.last_login_at = now
    return user


def set_active(session: Session, user_id: int, *, active: bool, actor_id: int) -> User:
    """Deactivate (or reactivate) a user; a deactivated user's sessions stop working at once."""
    user = repo.by_id(session, user_id)
    if user is None:
        raise NotFound("No such user.")
    if user.id == actor_id and not active:
        raise Conflict("You cannot deactivate your own account.")
    old = user.is_active
    user.is_active = active
    if not active:
        web_sessions.end_all(session, user.id, reason="deactivated")
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="activate" if active else "deactivate",
        entity="user",
        entity_id=user.id,
        old={"is_active": old},
        new={"is_active": active},
    )
    return user


SPECIALTIES = (
    "Radiology",
    "Thoracic radiology",
    "Radiology resident",
    "Pulmonology",
    "Other physician",
    "Other",
)


def save_intake(
    session: Session, user: User, *, years_experience: int, specialty: str, board_certified: bool
) -> None:
    """Store a reader's intake answers (asked once, before the first study)."""
    if not 0 <= years_experience <= 70:
        raise Invalid("Years of experience must be between 0 and 70.")
    if specialty not in SPECIALTIES:
        raise Invalid(f"Choose a specialty from the list: {', '.join(SPECIALTIES)}.")
    new = {"years_experience": years_experience, "specialty": specialty, "board_certified": board_certified}
    user.years_experience = years_experience
    user.specialty = specialty
    user.board_certified = board_certified
    user.intake_completed_at = datetime.now(UTC)
    audit_trail.record(session, actor_id=user.id, action="intake", entity="user", entity_id=user.id, new=new)
