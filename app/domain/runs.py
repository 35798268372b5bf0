"""Runs: admins start, cancel and retry them; workers claim them, report progress and finish them.

The route that starts or retries a run defers its job in the same transaction (app.jobs.queue), so a
run row and its job become visible together at commit, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import audit_trail
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.run_checks import InvalidConfig
from app.domain.run_kinds import KINDS, RunConfig
from app.persistence.models import FINISHED, Run
from app.persistence.repositories import runs as repo

RETRYABLE = frozenset({"failed", "cancelled", "stalled"})


def validate_config(session: Session, kind: str, raw: Mapping[str, Any]) -> RunConfig:
    """The kind's config from form or JSON values, with the objects it names checked to exist."""
    if kind not in KINDS:
        raise NotFound(f"No kind of run called '{kind}'.")
    model = KINDS[kind].config
    values = {k: v for k, v in raw.items() if k in model.model_fields}
    try:
        config = model.model_validate(values)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for err in exc.errors():
            where = str(err["loc"][0]) if err["loc"] else "config"
            fields.setdefault(where, err["msg"].removeprefix("Value error, "))
        raise InvalidConfig(fields) from None
    KINDS[kind].check(session, config)
    return config


def create(
    session: Session, kind: str, raw: Mapping[str, Any], *, actor_id: int, request_key: str | None
) -> tuple[Run, bool]:
    """A new queued run, or the one this form's token already made; the bool says whether it is new."""
    if request_key and len(request_key) > 64:
        raise Invalid("The form's token is malformed; reload the form.")
    if request_key and (earlier := repo.by_request_key(session, request_key)) is not None:
        return earlier, False
    config = validate_config(session, kind, raw)
    run_id = repo.insert_once(
        session,
        {
            "kind": kind,
            "config": config.model_dump(mode="json"),
            "status": "queued",
            "started_by_id": actor_id,
            "request_key": request_key or None,
        },
    )
    if run_id is None:  # the other click's insert committed while ours waited
        earlier = repo.by_request_key(session, request_key or "")
        assert earlier is not None
        return earlier, False
    run = get(session, run_id)
    audit_trail.record(
        session, actor_id=actor_id, action="start", entity="run", entity_id=run_id, new={"kind": kind}
    )
    return run, True


def get(session: Session, run_id: int, *, lock: bool = False) -> Run:
    """The run, or NotFound."""
    run = repo.get(session, run_id, lock=lock)
    if run is None:
        raise NotFound("No such run.")
    return run


def request_cancel(session: Session, run_id: int, *, actor_id: int) -> Run:
    """Cancel a queued run at once; ask a running one to stop at its next check (should_abort)."""
    run = get(session, run_id, lock=True)
    if run.status == "queued":
        run.status, run.finished_at = "cancelled", _now()
    elif run.status == "running":
        run.cancel_requested = True
    else:
        raise Conflict(f"The run has already ended ({run.status}).")
    audit_trail.record(session, actor_id=actor_id, action="cancel", entity="run", entity_id=run_id)
    return run


def retry(session: Session, run_id: int, *, actor_id: int) -> Run:
    """Queue a failed, cancelled or stalled run again as its next attempt (training resumes)."""
    run = get(session, run_id, lock=True)
    if run.status not in RETRYABLE:
        raise Conflict(f"Only failed, cancelled or stalled runs can be retried; this one is {run.status}.")
    run.attempt += 1
    run.status, run.error, run.cancel_requested = "queued", None, False
    run.progress, run.progress_note = 0.0, ""
    run.finished_at, run.heartbeat_at, run.worker = None, None, None
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="retry",
        entity="run",
        entity_id=run_id,
        new={"attempt": run.attempt},
    )
    return run


def claim(session: Session, run_id: int, attempt: int, *, worker: str) -> Run | None:
    """The worker's first step: mark the run running, or None when this job is stale or cancelled."""
    run = repo.get(session, run_id, lock=True)
    if run is None or run.attempt != attempt or run.status != "queued":
        return None
    if run.cancel_requested:
        run.status, run.finished_at = "cancelled", _now()
        return None
    # The database's clock, like the heartbeats and the stall check: workers' clocks may differ.
    run.status, run.worker, run.heartbeat_at = "running", worker, func.now()
    if run.started_at is None:
        run.started_at = func.now()
    session.flush()
    return run


def beat(session: Session, run_id: int, attempt: int, *, progress: float, note: str) -> str | None:
    """Heartbeat with progress; None to go on, "cancel" when asked to stop, "lost" when the run is no
    longer this attempt's (stalled and retried, or ended)."""
    cancel = repo.beat(session, run_id, attempt, progress=min(max(progress, 0.0), 1.0), note=note)
    if cancel is None:
        return "lost"
    return "cancel" if cancel else None


def still_running(session: Session, run_id: int, attempt: int) -> bool:
    """Whether this attempt still owns the run (locks the row until the transaction ends)."""
    run = repo.get(session, run_id, lock=True)
    return run is not None and run.attempt == attempt and run.status == "running"


def finish(
    session: Session,
    run_id: int,
    attempt: int,
    *,
    status: str,
    outputs: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record how this attempt ended; False (nothing written) when the run is no longer this attempt's."""
    assert status in FINISHED
    run = repo.get(session, run_id, lock=True)
    if run is None or run.attempt != attempt or run.status != "running":
        return False
    run.status, run.finished_at, run.error = status, _now(), error
    if outputs:
        run.outputs = {**run.outputs, **outputs}
    if status == "succeeded":
        run.progress = 1.0
    return True


def forget_config_fields(session: Session, run_id: int, fields: tuple[str, ...]) -> None:
    """Blank config fields that held identifiers once they have served (a PACS import's accession list):
    the run keeps its other settings, and the database keeps no accession number after the import."""
    run = repo.get(session, run_id, lock=True)
    if run is not None and any(run.config.get(f) for f in fields):
        run.config = {**run.config, **{f: "" for f in fields}}


def reap_stalled(session: Session) -> list[int]:
    """Mark running runs whose worker went silent as stalled (any process may do this)."""
    return repo.mark_stalled(session, get_settings().run_stall_after_s)


def list_runs(session: Session, *, kind: str | None = None, status: str | None = None) -> list[Run]:
    """Runs for the list page, newest first."""
    return repo.list_runs(session, kind=kind or None, status=status or None)


def _now() -> datetime:
    return datetime.now(UTC)
