"""What every task does around its body: claim the run, heartbeat, log to the run's folder, finish it.

A body is `body(ctx, session) -> outputs`. It reports progress with `ctx.progress(fraction, note)`, or
hands `ctx.report` to a computation of app.ml as its ProgressFn, and stops when
`ctx.should_abort()` turns true (an admin's Cancel, or the run no longer being this attempt's). What it
writes through `session` commits together with the run's final status, once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procrastinate import JobContext
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import AbortReason
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import runs
from app.domain.run_kinds import KINDS, RunConfig
from app.persistence.db import get_sessionmaker, session_scope

if TYPE_CHECKING:
    from app.ml.progress import Progress

log = logging.getLogger("cxrlab.run")
LOG_FILE = "log.txt"


class Aborted(Exception):
    """Raised by a body (or ctx.check_abort) to stop early; the run ends cancelled."""


@dataclass
class RunContext:
    """What a task body knows about its run, and how it reports back."""

    run_id: int
    attempt: int
    config: RunConfig
    run_dir: Path
    job: JobContext | None = None
    _fraction: float = 0.0
    _note: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    # Set when the run is no longer this attempt's (stalled and retried): write nothing shared any more.
    lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, fraction: float, note: str = "") -> None:
        """Remember progress; the heartbeat thread writes the latest value to the run row."""
        self._fraction, self._note = fraction, note

    def report(self, p: Progress) -> None:
        """Take a computation's report (app.ml.progress) as the run's progress: any ProgressFn can be this."""
        self.progress(p.fraction, p.note)

    def should_abort(self) -> bool:
        """True once the admin cancelled, the worker is shutting down, or the run moved on."""
        return self._stop.is_set() or bool(self.job is not None and self.job.should_abort())

    def check_abort(self) -> None:
        """Raise Aborted when the body should stop."""
        if self.should_abort():
            raise Aborted()

    def check_still_mine(self) -> None:
        """Before publishing anything outside the run's own transaction: stop if the run moved on."""
        with session_scope() as session:
            if not runs.still_running(session, self.run_id, self.attempt):
                self.lost.set()
                raise Aborted()


def worker_name() -> str:
    """host:pid, shown on the run page and in stall messages."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _heartbeat(ctx: RunContext, done: threading.Event, every_s: float) -> None:
    """Until `done`: write progress and a heartbeat; a cancel request or a lost run sets ctx._stop."""
    while not done.wait(every_s):
        try:
            with session_scope() as session:
                verdict = runs.beat(session, ctx.run_id, ctx.attempt, progress=ctx._fraction, note=ctx._note)
            if verdict is not None:
                ctx._stop.set()
                if verdict == "lost":
                    ctx.lost.set()
        except Exception:  # a database hiccup must not kill the job; the next beat tries again
            log.exception("heartbeat for run %s failed", ctx.run_id)


def _run_log(run_dir: Path) -> logging.Handler:
    """Send this thread's records of the run logger to the run's log file (shown on its page)."""
    handler = logging.FileHandler(run_dir / LOG_FILE)
    # Only this task's thread: with --concurrency > 1 other runs log through the same logger.
    task_thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == task_thread)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


Body = Callable[[RunContext, Session], Any]  # a kind's work: (context, session) -> outputs


def execute(job: JobContext | None, run_id: int, attempt: int, body: Body) -> None:
    """Run `body` for the run's current attempt and record how it ended."""
    settings = get_settings()
    with session_scope() as session:
        run = runs.claim(session, run_id, attempt, worker=worker_name())
        if run is None:
            log.info("run %s attempt %s is not ours to run (stale or cancelled)", run_id, attempt)
            return
        kind, raw_config = run.kind, run.config
    ctx: RunContext | None = None
    handler: logging.Handler | None = None
    done = threading.Event()
    beat: threading.Thread | None = None
    session = get_sessionmaker()()
    try:
        # Inside the try: a bad config or an unwritable store fails the run with its reason.
        config = KINDS[kind].config.model_validate(raw_config)
        run_dir = settings.runs_dir / str(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        ctx = RunContext(run_id, attempt, config, run_dir, job)
        handler = _run_log(run_dir)
        beat = threading.Thread(target=_heartbeat, args=(ctx, done, settings.run_heartbeat_s), daemon=True)
        beat.start()
        log.info("run %s (%s) attempt %s started on %s", run_id, kind, attempt, worker_name())
        outputs = body(ctx, session)
        if runs.finish(session, run_id, attempt, status="succeeded", outputs=outputs or {}):
            session.commit()  # what the body wrote and the run's outcome, together
            log.info("run %s succeeded: %s", run_id, outputs)
        else:  # marked stalled (or retried) meanwhile: the attempt that owns the run decides
            session.rollback()
            log.warning(
                "run %s finished, but it is no longer this attempt's; its writes are discarded", run_id
            )
    except (Aborted, JobAborted) as exc:
        session.rollback()  # nothing the body wrote survives a cancel
        shutdown = job is not None and job.abort_reason() == AbortReason.SHUTDOWN
        with session_scope() as s:
            if shutdown:  # not the admin's wish: leave it failed, so a retry picks it up again
                runs.finish(
                    s, run_id, attempt, status="failed", error="The worker shut down; retry to continue."
                )
            else:
                runs.finish(s, run_id, attempt, status="cancelled")
        log.info("run %s %s", run_id, "interrupted by worker shutdown" if shutdown else "cancelled")
        raise JobAborted() from exc
    except BaseException as exc:
        session.rollback()
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        with session_scope() as s:
            runs.finish(s, run_id, attempt, status="failed", error=f"{type(exc).__name__}: {exc}"[:4000])
        raise
    finally:
        session.close()
        done.set()
        if beat is not None:
            beat.join()
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
