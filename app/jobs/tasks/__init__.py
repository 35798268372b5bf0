"""Task functions, loaded only by the worker: one per kind in app.domain.run_kinds.KINDS, same name."""

from __future__ import annotations

from collections.abc import Callable

from procrastinate import JobContext

from app.jobs.tasks.gan import train_gan_body
from app.jobs.tasks.runner import execute
from app.jobs.tasks.sampling import sample_body
from app.jobs.tasks.segal import import_segal_body


def train_gan(context: JobContext, run_id: int, attempt: int) -> None:
    """Train a GAN for a run."""
    execute(context, run_id, attempt, train_gan_body)


def sample(context: JobContext, run_id: int, attempt: int) -> None:
    """Sample a model into an image set for a run."""
    execute(context, run_id, attempt, sample_body)


def import_segal(context: JobContext, run_id: int, attempt: int) -> None:
    """Import the published generator for a run."""
    execute(context, run_id, attempt, import_segal_body)


TASKS: dict[str, Callable[..., None]] = {
    "train_gan": train_gan,
    "sample": sample,
    "import_segal": import_segal,
}
