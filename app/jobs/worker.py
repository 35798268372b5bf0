"""The worker process: a procrastinate worker with every task registered, and a reaper of stalled runs.

Any number of workers on any machines share one DATABASE_URL and one STORE_DIR (the image store and the
runs' folders). With --concurrency 1 a worker runs one job at a time, so one GPU job per GPU process.
"""

from __future__ import annotations

import logging
import threading

import procrastinate
from sqlalchemy.engine import make_url

from app.core.config import get_settings
from app.domain import runs
from app.domain.run_kinds import KINDS
from app.persistence.db import database_url, session_scope

log = logging.getLogger("cxrlab.worker")
SHUTDOWN_GRACE_S = 5.0


def libpq_url() -> str:
    """The app's database as a plain postgresql:// URL for procrastinate's psycopg pool."""
    url = make_url(database_url(get_settings())).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def build_app() -> procrastinate.App:
    """A procrastinate App that knows every task, each on its kind's queue."""
    from app.jobs.tasks import TASKS

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=libpq_url()))
    for name, fn in TASKS.items():
        app.task(name=name, queue=KINDS[name].queue, pass_context=True)(fn)
    missing = set(KINDS) - set(TASKS)
    if missing:
        raise RuntimeError(f"kinds without a task: {sorted(missing)}")
    return app


def _reap_forever(stop: threading.Event, every_s: float) -> None:
    """Mark runs whose worker went silent as stalled, so an admin sees it and can retry."""
    while not stop.wait(every_s):
        try:
            with session_scope() as session:
                for run_id in runs.reap_stalled(session):
                    log.warning("run %s stalled: its worker stopped sending heartbeats", run_id)
        except Exception:
            log.exception("reaping stalled runs failed")


def run_worker(queues: list[str], concurrency: int, name: str | None) -> None:
    """Consume `queues` until SIGINT/SIGTERM (a running job is asked to abort and may be retried)."""
    settings = get_settings()
    stop = threading.Event()
    reaper = threading.Thread(target=_reap_forever, args=(stop, settings.run_heartbeat_s), daemon=True)
    reaper.start()
    try:
        build_app().run_worker(
            queues=queues,
            concurrency=concurrency,
            name=name,
            install_signal_handlers=True,
            update_heartbeat_interval=settings.run_heartbeat_s,
            stalled_worker_timeout=settings.run_stall_after_s,
            # On SIGTERM, running jobs get this long, then should_abort() turns true: training then
            # writes its resume state and the run ends failed ("worker shut down"), ready to retry.
            shutdown_graceful_timeout=SHUTDOWN_GRACE_S,
        )
    finally:
        stop.set()
