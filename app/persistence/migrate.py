"""Run Alembic migrations from code (the CLI, the demo and the tests), always as the schema's owner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import NullPool

from app.core.config import get_settings
from app.persistence.db import migration_url, with_role

# migrations/ sits beside the app package (an editable install or the repository itself).
ROOT = Path(__file__).resolve().parents[2]


def app_role() -> str:
    """The role the migrations create and grant to: DB_APP_ROLE, or `cxrlab_app` if the app acts as none."""
    return get_settings().db_app_role or "cxrlab_app"


def alembic_config() -> Config:
    """Alembic's config for this repository."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


def owner_url(engine: Engine) -> str:
    """Where migrations connect: MIGRATION_DATABASE_URL if set, else `engine`'s login without the app role."""
    settings = get_settings()
    if settings.migration_database_url:
        return migration_url(settings)
    return with_role(engine.url.render_as_string(hide_password=False), "")


@contextmanager
def _as_owner(engine: Engine, *, transaction: bool) -> Iterator[Connection]:
    # A connection of its own: the caller's engine (usually the app's) starts every connection as the
    # app role, which may not create, alter or grant anything.
    owner = create_engine(owner_url(engine), poolclass=NullPool)
    try:
        with owner.begin() if transaction else owner.connect() as conn:
            yield conn
    finally:
        owner.dispose()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database behind `engine` to `revision`."""
    cfg = alembic_config()
    with _as_owner(engine, transaction=True) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def check(engine: Engine) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    cfg = alembic_config()
    with _as_owner(engine, transaction=False) as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)
