"""Engine and session factory; the only place that knows how to reach Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings, get_settings
from app.core.embedded_db import embedded_url, sqlalchemy_url


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set, otherwise the URL of the embedded server under STORE_DIR."""
    if settings.database_url:
        return sqlalchemy_url(settings.database_url)
    return embedded_url(settings.pgdata_dir)


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine."""
    return create_engine(database_url(get_settings()), pool_size=10, max_overflow=20, pool_pre_ping=True)


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
