"""Task functions, loaded only by the worker: one per kind in app.domain.run_kinds.KINDS, same name, whose
body is `<kind>_body` in the module `app/jobs/tasks/<kind>.py`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from procrastinate import JobContext

from app.domain.run_kinds import KINDS
from app.jobs.tasks.runner import Body, execute


def _body(kind: str) -> Body:
    """The body of a kind: `<kind>_body` in `app/jobs/tasks/<kind>.py` (one name from the run kind down)."""
    return getattr(importlib.import_module(f"app.jobs.tasks.{kind}"), f"{kind}_body")


# Each kind's body; the task of the same name claims the run, runs the body and records the outcome. A
# kind without its module or body stops the worker at import, before it takes a job.
BODIES: dict[str, Body] = {name: _body(name) for name in KINDS}


def _task(name: str, body: Body) -> Callable[..., None]:
    def task(context: JobContext, run_id: int, attempt: int) -> None:
        execute(context, run_id, attempt, body)

    task.__name__ = task.__qualname__ = name
    task.__doc__ = f"Run the '{name}' body for a run's current attempt."
    return task


TASKS: dict[str, Callable[..., None]] = {name: _task(name, body) for name, body in BODIES.items()}
