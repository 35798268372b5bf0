"""The test database's helpers: emptying it between tests (db_url in tests/conftest.py), apart so a test can
run it, and recording the SQL the app sends."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from psycopg.errors import DeadlockDetected
from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError


@contextlib.contextmanager
def _heard(event_name: str, record: Callable[..., None]) -> Iterator[None]:
    """`record` listening to the app's engine for `event_name` inside the block."""
    from app.persistence.db import get_engine

    engine = get_engine()
    event.listen(engine, event_name, record)
    try:
        yield
    finally:
        event.remove(engine, event_name, record)


@contextlib.contextmanager
def sent_sql() -> Iterator[list[tuple[str, object]]]:
    """Every statement (with its parameters) the app's engine sends inside the block; BEGIN and COMMIT
    are not statements here."""
    seen: list[tuple[str, object]] = []
    with _heard("before_cursor_execute", lambda _c, _cur, sql, params, *_: seen.append((sql, params))):
        yield seen


@contextlib.contextmanager
def rollbacks() -> Iterator[list[None]]:
    """One entry per transaction the app's engine rolls back inside the block."""
    seen: list[None] = []
    with _heard("rollback", lambda _conn: seen.append(None)):
        yield seen


def empty_database(owner_engine: Engine, emptying_sql: str, tries: int = 5) -> None:
    """Run the emptying transaction, again if Postgres broke a deadlock by aborting it.

    The LOCK takes the tables one after another; a live server still answering an earlier test's page
    (a poll, a request Chromium sent before the page closed) may hold a later table and wait on an earlier
    one. Postgres aborts one of the two after deadlock_timeout; when it picks ours, the server's request
    has let go of its locks by the time we try again.
    """
    for attempt in range(tries):
        try:
            with owner_engine.begin() as conn:
                conn.exec_driver_sql(emptying_sql)
            return
        except OperationalError as exc:
            if not isinstance(exc.orig, DeadlockDetected) or attempt == tries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
