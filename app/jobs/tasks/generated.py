"""What the tasks that make films share (`sample`, `lco`): finding the models a run names, and storing
the films they make as one new synthetic set, all or nothing, with the run's bar moving as films are
stored and a cancel honoured between films.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.importers import ImportSpec, SourceImage, import_images
from app.jobs.tasks.runner import RunContext
from app.persistence.blobs import BlobStore
from app.persistence.model_store import StoredModel, find_model
from app.persistence.models import ImageSet


def named_model(name: str, *, kind: str = "generator") -> StoredModel:
    """The stored model a run names; the run fails with a plain message when it was deleted since."""
    found = find_model(get_settings().models_dir, name, kind=kind)
    if found is None:
        what = "model" if kind == "generator" else kind
        raise ValueError(f"{what} '{name}' no longer exists")
    return found


def import_generated(
    ctx: RunContext,
    session: Session,
    spec: ImportSpec,
    items: Iterable[SourceImage],
    n: int,
    *,
    span: tuple[float, float] = (0.0, 1.0),
    verb: str = "storing",
) -> ImageSet:
    """The n films of `items` as the new set `spec`; the bar moves across `span` as each is stored.

    A cancel is checked after every film: raising inside the import discards what it rendered so far, so
    a cancelled run leaves no set behind.
    """
    lo, hi = span

    def progress(done: int) -> None:
        ctx.progress(lo + (hi - lo) * done / n, f"{verb} {done:,} / {n:,}")
        ctx.check_abort()

    store = BlobStore(get_settings().images_dir)
    return import_images(session, store, spec, items, actor_id=None, progress=progress)
