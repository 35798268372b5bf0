"""Engine and session factory; the only place that knows how to reach Postgres."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings, get_settings
from app.core.embedded_db import embedded_url, sqlalchemy_url

# libpq's startup option that sets the role, written without a space: SQLAlchemy renders a space in a
# query as "+", which libpq does not decode.
_ROLE_OPTION = re.compile(r"(?:^|\s)-c\s*role=\S+")


def with_role(url: str, role: str) -> str:
    """`url` acting as `role` from connection start (libpq's options); role '' acts as the login user."""
    parsed = make_url(url)
    options = _ROLE_OPTION.sub("", str(parsed.query.get("options", ""))).strip()
    if role:
        options = f"{options} -crole={role}".strip()
    query = {k: v for k, v in parsed.query.items() if k != "options"}
    if options:
        query["options"] = options
    return parsed.set(query=query).render_as_string(hide_password=False)


def _login_url(settings: Settings) -> str:
    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    return embedded_url(settings.pgdata_dir)


def database_url(settings: Settings) -> str:
    """The app's URL: DATABASE_URL (or the embedded server under STORE_DIR) acting as DB_APP_ROLE.

    Every connection of the web app and the workers (procrastinate's too: it reads this URL) starts as that
    role, which owns no table: it cannot TRUNCATE, ALTER or disable the append-only triggers.
    """
    return with_role(_login_url(settings), settings.db_app_role)


def migration_url(settings: Settings) -> str:
    """The schema owner's URL: MIGRATION_DATABASE_URL when set, otherwise the app's login without its role."""
    if settings.migration_database_url:
        return with_role(sqlalchemy_url(settings.migration_database_url), "")
    return with_role(_login_url(settings), "")


# The web process runs at most DB_POOL_SIZE worker threads (app/web/main.py), and the pool keeps as many
# connections: a smaller pool behind more threads opened and closed a connection for each request past its
# size (benchmarks/README.md). As many again may open: the slow downloads (app.web.routes.results, two at a
# time, outside those threads) each hold one while they read, an export for as long as it is written.
@lru_cache
def get_engine() -> Engine:
    """The process-wide engine: DB_POOL_SIZE connections kept open, as many more for a moment."""
    settings = get_settings()
    return create_engine(
        database_url(settings),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
    )


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    """A session factory bound to the process-wide engine."""
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for scripts and the CLI: commits on success, rolls back on error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
