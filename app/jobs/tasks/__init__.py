"""Task functions, loaded only by the worker: one per kind in app.domain.run_kinds.KINDS, same name."""

from __future__ import annotations

from collections.abc import Callable

from procrastinate import JobContext

from app.jobs.tasks.audit import audit_body
from app.jobs.tasks.classifier import train_classifier_body
from app.jobs.tasks.dicomweb import import_dicomweb_body
from app.jobs.tasks.evaluate import evaluate_body
from app.jobs.tasks.experiments import synth_vs_real_body
from app.jobs.tasks.gan import train_gan_body
from app.jobs.tasks.lco import lco_body
from app.jobs.tasks.runner import Body, execute
from app.jobs.tasks.sampling import sample_body
from app.jobs.tasks.segal import import_segal_body

# Each kind's body; the task of the same name claims the run, runs the body and records the outcome.
BODIES: dict[str, Body] = {
    "train_gan": train_gan_body,
    "sample": sample_body,
    "import_segal": import_segal_body,
    "train_classifier": train_classifier_body,
    "lco": lco_body,
    "synth_vs_real": synth_vs_real_body,
    "evaluate": evaluate_body,
    "audit": audit_body,
    "import_dicomweb": import_dicomweb_body,
}


def _task(name: str, body: Body) -> Callable[..., None]:
    def task(context: JobContext, run_id: int, attempt: int) -> None:
        execute(context, run_id, attempt, body)

    task.__name__ = task.__qualname__ = name
    task.__doc__ = f"Run the '{name}' body for a run's current attempt."
    return task


TASKS: dict[str, Callable[..., None]] = {name: _task(name, body) for name, body in BODIES.items()}
