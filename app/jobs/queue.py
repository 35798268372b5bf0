"""Defer, abort and clean up procrastinate jobs by task name, inside the caller's transaction.

The web process uses only this module: it never imports the tasks (or torch). Jobs are written through
the SQLAlchemy session's own connection, so a run and its job commit together; the worker is notified
by procrastinate's trigger only at that commit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.domain.run_kinds import KINDS
from app.persistence.models import Run


@lru_cache
def deferring_app() -> procrastinate.App:
    """A procrastinate App that only defers: every query goes through a connection we pass in."""
    return procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


def _driver_connection(session: Session) -> Any:
    """The psycopg connection under the session's current transaction."""
    return session.connection().connection.driver_connection


def lock_for(run: Run) -> str:
    """The queueing lock of a run's attempt: one waiting job per run, however often the form is sent."""
    return f"run-{run.id}"


def enqueue(session: Session, run: Run) -> bool:
    """Defer the job for the run's current attempt in the session's transaction; False if one waits."""
    kind = KINDS[run.kind]
    deferrer = deferring_app().configure_task(
        kind.name, queue=kind.queue, queueing_lock=lock_for(run), connection=_driver_connection(session)
    )
    try:
        with session.begin_nested():  # a refused insert must not abort the caller's transaction
            run.job_id = deferrer.defer(run_id=run.id, attempt=run.attempt)
    except AlreadyEnqueued:
        return False
    return True


def abort(session: Session, job_id: int | None) -> None:
    """Ask procrastinate to abort a job (a waiting one is cancelled outright)."""
    if job_id is not None:
        deferring_app().job_manager.cancel_job_by_id(
            job_id, abort=True, connection=_driver_connection(session)
        )


def fail_if_orphaned(session: Session, job_id: int | None) -> None:
    """Close the job of a stalled attempt (its worker died with it 'doing') before the run is retried."""
    if job_id is None:
        return
    try:
        with session.begin_nested():  # the job may leave 'doing' between our check and the update
            session.execute(
                text(
                    "SELECT procrastinate_finish_job_v1(id, 'failed', false) FROM procrastinate_jobs "
                    "WHERE id = :id AND status = 'doing'"
                ),
                {"id": job_id},
            )
    except DBAPIError:
        pass  # it finished on its own meanwhile: nothing to close
