"""Queries over runs. Never commits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.persistence.models import Run

PAGE = 100


def get(session: Session, run_id: int, *, lock: bool = False) -> Run | None:
    """One run; `lock` holds its row until the transaction ends."""
    query = select(Run).where(Run.id == run_id)
    if lock:
        query = query.with_for_update(of=Run)  # not the joined started_by row
    return session.scalar(query)


def by_request_key(session: Session, key: str) -> Run | None:
    """The run a New-run form with this token made, if any."""
    return session.scalar(select(Run).where(Run.request_key == key))


def list_runs(session: Session, *, kind: str | None = None, status: str | None = None) -> list[Run]:
    """The newest runs, optionally of one kind and status."""
    query = select(Run).order_by(Run.id.desc()).limit(PAGE)
    if kind:
        query = query.where(Run.kind == kind)
    if status:
        query = query.where(Run.status == status)
    return list(session.scalars(query))


def insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a run unless one with the same request_key exists (then None): a double click waits
    on the first insert's unique-index entry and, once that commits, returns None instead of failing."""
    stmt = (
        insert(Run).values(**values).on_conflict_do_nothing(index_elements=["request_key"]).returning(Run.id)
    )
    return session.scalar(stmt)


def beat(session: Session, run_id: int, attempt: int, *, progress: float, note: str) -> bool | None:
    """Record a heartbeat and progress for a running attempt; returns cancel_requested, or None when the
    run is no longer this attempt's to run (stalled and retried, cancelled while queued...)."""
    stmt = (
        update(Run)
        .where(Run.id == run_id, Run.attempt == attempt, Run.status == "running")
        .values(heartbeat_at=func.now(), progress=progress, progress_note=note[:200])
        .returning(Run.cancel_requested)
    )
    return session.scalar(stmt)


def mark_stalled(session: Session, lapse_s: float) -> list[int]:
    """Running runs without a heartbeat for `lapse_s` seconds become stalled; returns their ids.

    Both the heartbeat and this comparison use the database's clock, so workers' clocks may differ."""
    stmt = (
        update(Run)
        .where(Run.status == "running", Run.heartbeat_at < func.now() - literal(timedelta(seconds=lapse_s)))
        .values(
            status="stalled",
            finished_at=func.now(),
            error=func.concat("No heartbeat from worker ", Run.worker, " since ", Run.heartbeat_at, "."),
        )
        .returning(Run.id)
    )
    return list(session.scalars(stmt))


def claimed(session: Session, key: str, value: str) -> bool:
    """Whether a queued or running run's config names `value` under `key` (a set or model it will make)."""
    query = select(Run.id).where(Run.status.in_(("queued", "running")), Run.config[key].astext == value)
    return session.scalar(query.limit(1)) is not None
