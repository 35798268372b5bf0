"""Task functions, loaded only by the worker: one per kind in app.domain.run_kinds.KINDS, same name."""

from __future__ import annotations

from collections.abc import Callable

from procrastinate import JobContext

from app.jobs.tasks.classifier import train_classifier_body
from app.jobs.tasks.evaluate import evaluate_body
from app.jobs.tasks.experiments import synth_vs_real_body
from app.jobs.tasks.gan import train_gan_body
from app.jobs.tasks.lco import lco_body
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


def train_classifier(context: JobContext, run_id: int, attempt: int) -> None:
    """Train a classifier for a run."""
    execute(context, run_id, attempt, train_classifier_body)


def lco(context: JobContext, run_id: int, attempt: int) -> None:
    """Build a labelled LCO archive for a run."""
    execute(context, run_id, attempt, lco_body)


def synth_vs_real(context: JobContext, run_id: int, attempt: int) -> None:
    """Run the synthetic-train, real-test experiment for a run."""
    execute(context, run_id, attempt, synth_vs_real_body)


def evaluate(context: JobContext, run_id: int, attempt: int) -> None:
    """Evaluate a synthetic set against a real one for a run."""
    execute(context, run_id, attempt, evaluate_body)


TASKS: dict[str, Callable[..., None]] = {
    "train_gan": train_gan,
    "sample": sample,
    "import_segal": import_segal,
    "train_classifier": train_classifier,
    "lco": lco,
    "synth_vs_real": synth_vs_real,
    "evaluate": evaluate,
}
