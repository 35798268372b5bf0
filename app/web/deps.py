"""Request dependencies: the database session, the signed-in user and role guards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.domain import ownership, web_sessions
from app.domain.ids import DbId
from app.persistence.blobs import BlobStore
from app.persistence.db import get_sessionmaker
from app.persistence.models import User

# The cookie's key for the session token (the rest of the signed cookie holds the CSRF token).
SESSION_KEY = "sid"


class LoginRequired(Exception):
    """Raised when a page needs a signed-in user; the handler redirects to the login page."""


class RoleRequired(Exception):
    """Raised when the signed-in user lacks the role a page needs (403)."""


class IntakeRequired(Exception):
    """Raised when a reader opens a reading page before answering the intake."""


async def get_db() -> AsyncIterator[Session]:
    """One session per request; routes commit, anything uncommitted is rolled back.

    Async, because making a Session does no I/O (it connects at its first query) and ending one whose
    route committed does none either: a sync generator would cost two worker-thread hops per request
    (about 0.2 ms each here). Only an open transaction is rolled back and closed in a worker thread.
    """
    session = get_sessionmaker()()
    try:
        yield session
    finally:
        if session.in_transaction():
            # Rolls back what the route left uncommitted, on a limiter of its own (as FastAPI closes a sync
            # dependency): waiting for a thread of the shared pool, whose threads may all be waiting for a
            # connection this close would return, could deadlock.
            await to_thread.run_sync(session.close, limiter=CapacityLimiter(1))
        else:
            session.close()


Db = Annotated[Session, Depends(get_db)]


# Dependencies that do no I/O are async: FastAPI runs each sync one in a worker thread, and on the reader's
# hot path (page, image, submit) those hops cost about 1 ms a request (measured with bench_reading).
async def app_settings() -> Settings:
    """The settings, as a dependency that needs no worker thread."""
    return get_settings()


AppSettings = Annotated[Settings, Depends(app_settings)]


async def get_store(settings: AppSettings) -> BlobStore:
    """The image blob store under STORE_DIR."""
    return BlobStore(settings.images_dir)


Store = Annotated[BlobStore, Depends(get_store)]


def session_policy(settings: Settings) -> web_sessions.SessionPolicy:
    """The lifetime and idle timeout of sessions, from the settings."""
    return web_sessions.SessionPolicy(lifetime_s=settings.session_lifetime_s, idle_s=settings.session_idle_s)


# A sync dependency runs in a worker thread of its own, and the route (or the next dependency) in another.
# Between the two hops a request waits for a thread; holding its connection there, a burst wider than the
# pool's connections let every thread wait for a connection while the connections waited for a thread,
# until the pool's 30 s timeout. So a dependency that reads ends its transaction before it returns
# (tests/integration/test_many_processes.py). A COMMIT costs a round trip; the case page, the answer and the
# image call `resolve_user` inside their one hop instead, and pay nothing.
def optional_user(request: Request, db: Db, settings: AppSettings) -> User | None:
    """The signed-in, active user, or None once the server has ended the session (or there is none)."""
    user = resolve_user(request, db, settings)
    db.commit()  # no connection held while the request waits for its next thread (above)
    return user


def resolve_user(request: Request, db: Session, settings: Settings) -> User | None:
    """`optional_user` as a call inside a route's own worker thread; the route ends the transaction."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    found = web_sessions.resolve(db, token, session_policy(settings))
    if db.dirty:
        db.commit()  # only the session row: a touch at most once a minute, or the ending of the session
    if found.user is None:
        request.session.pop(SESSION_KEY, None)
        if found.ended:
            request.session["ended"] = found.ended  # the sign-in page says why
    return found.user


def signed_in(user: User | None) -> User:
    """The signed-in user, or a redirect to the login page."""
    if user is None:
        raise LoginRequired()
    return user


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """`signed_in` as a dependency."""
    return signed_in(user)


def admit(user: User, roles: tuple[str, ...]) -> User:
    """The user if their role is one of `roles` and their intake is done (RoleRequired, IntakeRequired)."""
    if user.role not in roles:
        raise RoleRequired()
    if user.needs_intake:
        raise IntakeRequired()
    return user


def require_roles(*roles: str):
    """A dependency that admits only users with one of `roles`."""

    async def dependency(user: Annotated[User, Depends(current_user)]) -> User:
        return admit(user, roles)

    return dependency


def signed_in_reader(request: Request, db: Session, settings: Settings) -> User:
    """`Reader` as a call, for a route that runs it in its own work's worker thread (one hop, not two)."""
    return admit(signed_in(resolve_user(request, db, settings)), ("reader",))


CurrentUser = Annotated[User, Depends(current_user)]
Admin = Annotated[User, Depends(require_roles("admin"))]
Staff = Annotated[User, Depends(require_roles("admin", "researcher"))]
Reader = Annotated[User, Depends(require_roles("reader"))]


def managed_study_id(db: Db, user: Staff, study_id: DbId) -> int:
    """The path's study id once the signed-in staff member may manage it: its owner, a collaborator or
    an admin (404 for anyone else, as for a study that does not exist)."""
    ownership.visible_study(db, study_id, user)
    db.commit()  # the route runs in another thread: hold no connection waiting for it (optional_user)
    return study_id


ManagedStudyId = Annotated[int, Depends(managed_study_id)]
