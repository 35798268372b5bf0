"""Alembic environment: the URL comes from the app's settings (or the caller's connection)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app.persistence import models  # noqa: F401  (registers every table on Base.metadata)
from app.persistence.base import Base

target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Leave procrastinate's own tables out of autogenerate and `alembic check` (revision 0002 owns them)."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def _configure(connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, compare_type=True, include_name=include_name
    )


def run_migrations_online() -> None:
    """Migrate through a connection handed over by app.persistence.migrate, or one we open."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from app.core.config import get_settings
    from app.persistence.db import migration_url

    engine = create_engine(migration_url(get_settings()))  # the owner: the app's role may not alter tables
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
