"""The tests' own cleanup: it must empty the database even when a live server from an earlier test still
holds a table (a flake CI met once: Postgres broke a deadlock by aborting the cleanup)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text

from tests.database import empty_database


def test_emptying_tries_again_when_postgres_aborts_it_to_break_a_deadlock(
    db_url: str, owner_engine: Engine, _emptying_sql: str
) -> None:
    with owner_engine.connect() as conn:
        if not conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
            pytest.skip("setting deadlock_timeout takes a superuser")
    failures: list[BaseException] = []

    def empty() -> None:
        try:
            empty_database(owner_engine, _emptying_sql)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.append(exc)

    with owner_engine.connect() as server:
        server.begin()
        # The server's side waits longest before checking for a deadlock, so Postgres always aborts the
        # cleanup, never this connection: the case the retry is for. (Each waiter checks once, after its
        # deadlock_timeout, 1 s by default for the cleanup: the second SELECT below starts waiting well
        # within that.)
        server.exec_driver_sql("SET LOCAL deadlock_timeout = '30s'")
        server.exec_driver_sql("SELECT 1 FROM web_sessions LIMIT 1")  # the last table the LOCK takes
        cleanup = threading.Thread(target=empty)
        cleanup.start()
        deadline = time.monotonic() + 10
        while not _someone_waits_on_a_lock(owner_engine):
            assert time.monotonic() < deadline, "the cleanup never waited on the server's table"
            time.sleep(0.02)
        server.exec_driver_sql("SELECT 1 FROM audit_events LIMIT 1")  # the first: a deadlock
        server.rollback()
        cleanup.join(timeout=30)
    assert not cleanup.is_alive()
    assert failures == []


def _someone_waits_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )
