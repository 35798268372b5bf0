"""Turn source images into an image set, all or nothing, through the one rendering path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.domain import audit_trail, identities
from app.domain.errors import Conflict, Invalid
from app.domain.rendering import ImageRejected, RenderedImage, render, render_array
from app.persistence.blobs import BlobStore
from app.persistence.models import Image, ImageSet
from app.persistence.repositories import image_sets

MIN_RESOLUTION, MAX_RESOLUTION = 32, 2048
MAX_REPORTED_ERRORS = 20
_CLAIMS = "cxrlab.import_blobs"  # session.info key: (store, created blobs) per import

log = logging.getLogger(__name__)


@dataclass
class SourceImage:
    """One image to import: bytes to decode (read) or pixels a generator made, plus its labels."""

    name: str
    read: Callable[[], bytes] | None = None
    pixels: np.ndarray | None = None  # (H, W) uint8 or float in [0, 1]
    findings: tuple[str, ...] = ()
    # The source's own ids; outside data's are stored only as keyed hashes (app.domain.identities).
    patient_id: str | None = None
    study_id: str | None = None
    split: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def render(self, size: int) -> RenderedImage:
        """Render through the shared path, whatever the origin."""
        if self.pixels is not None:
            return render_array(self.pixels, size=size)
        assert self.read is not None
        return render(self.read(), size=size, filename=self.name)


@dataclass(frozen=True)
class ImportSpec:
    """What the new image set is."""

    name: str
    kind: str
    label_schema: tuple[str, ...]
    resolution: int
    source: str
    description: str = ""


def validate_spec(session: Session, spec: ImportSpec) -> None:
    """Refuse a bad set description before any image is touched."""
    if not spec.name.strip():
        raise Invalid("The image set needs a name.")
    if spec.kind not in ("real", "synthetic"):
        raise Invalid("An image set is either 'real' or 'synthetic'.")
    if not MIN_RESOLUTION <= spec.resolution <= MAX_RESOLUTION:
        raise Invalid(f"Resolution must be between {MIN_RESOLUTION} and {MAX_RESOLUTION} pixels.")
    if image_sets.by_name(session, spec.name.strip()) is not None:
        raise Conflict(f"An image set named '{spec.name.strip()}' already exists.")


def import_images(
    session: Session,
    store: BlobStore,
    spec: ImportSpec,
    items: Iterable[SourceImage],
    *,
    actor_id: int | None,
    progress: Callable[[int], None] | None = None,
    notes: list[str] | None = None,
) -> ImageSet:
    """Render every item and add the set with its images; any bad item rejects the whole import.

    Blobs are written as we go (they are content-addressed and invisible until rows point at them).
    The ones this import created are removed again, unless another import has used them since, when
    the import fails here or when the caller's transaction ends without a commit. Files with the same
    content as an earlier file of the import are skipped, and `notes` (when given) says so.
    """
    validate_spec(session, spec)
    schema = set(spec.label_schema)
    created = _claim_until_commit(session, store)
    try:
        rows, duplicates = _render_all(store, spec, items, schema, created, progress)
        note = duplicate_note(duplicates)
        image_set = _add_set(session, spec, rows, note=note, actor_id=actor_id)
        audit_trail.record(
            session,
            actor_id=actor_id,
            action="import",
            entity="image_set",
            entity_id=image_set.id,
            new={
                "name": image_set.name,
                "kind": spec.kind,
                "images": len(rows),
                "source": spec.source,
                "duplicates_skipped": len(duplicates),
            },
        )
        session.flush()  # a value the database refuses fails here, while the blobs are still ours to drop
    except BaseException:
        store.remove_created(created)
        created.clear()
        raise
    if note and notes is not None:
        notes.append(note)
    return image_set


def _add_set(
    session: Session, spec: ImportSpec, rows: list[Image], *, note: str, actor_id: int | None
) -> ImageSet:
    """The new set's row with its images' rows (flushed, so the set has its id)."""
    image_set = ImageSet(
        name=spec.name.strip(),
        kind=spec.kind,
        label_schema=list(spec.label_schema),
        resolution=spec.resolution,
        source=spec.source,
        description="; ".join(filter(None, [spec.description, note])),
        image_count=len(rows),
        created_by_id=actor_id,
    )
    session.add(image_set)
    session.flush()
    for row in rows:
        row.image_set_id = image_set.id
    session.add_all(rows)
    return image_set


def _render_all(
    store: BlobStore,
    spec: ImportSpec,
    items: Iterable[SourceImage],
    schema: set[str],
    created: list[tuple[str, int]],
    progress: Callable[[int], None] | None,
) -> tuple[list[Image], list[tuple[str, str]]]:
    """Image rows and (skipped, kept) name pairs of duplicates; Invalid with every problem found."""
    rows: list[Image] = []
    errors: list[str] = []
    seen: set[str] = set()
    first_with: dict[str, str] = {}  # sha256 -> the name of the first file with that content
    duplicates: list[tuple[str, str]] = []
    for n, item in enumerate(items, start=1):
        if item.name in seen:
            errors.append(f"{item.name}: appears twice")
        seen.add(item.name)
        unknown = set(item.findings) - schema
        if unknown:
            errors.append(f"{item.name}: findings {sorted(unknown)} are not in the label schema")
        try:
            rendered = item.render(spec.resolution)
        except ImageRejected as exc:
            errors.append(f"{item.name}: {exc}")
        else:
            if rendered.sha256 in first_with:
                # Skipped, not kept: one film twice in a set could be drawn twice into a study, and a
                # reader who recognises it has a cue the study does not mean to give (and its answers
                # would count twice). The first file's labels are the ones kept.
                duplicates.append((item.name, first_with[rendered.sha256]))
            else:
                first_with[rendered.sha256] = item.name
                stamp = store.put(rendered.sha256, rendered.png)
                if stamp is not None:
                    created.append((rendered.sha256, stamp))
                patient, study = _stored_ids(spec, item)
                rows.append(
                    Image(
                        sha256=rendered.sha256,
                        source_name=item.name[:500],
                        labels=list(item.findings),
                        patient_id=patient,
                        study_id=study,
                        split=item.split,
                        provenance={"source_file": item.name, **item.provenance},
                    )
                )
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
        if progress is not None:
            progress(n)
    if errors:
        raise Invalid("Nothing was imported. " + "; ".join(errors))
    if not rows:
        raise Invalid("Nothing was imported: no images were found.")
    return rows, duplicates


def _stored_ids(spec: ImportSpec, item: SourceImage) -> tuple[str | None, str | None]:
    """(patient, study) as stored: pseudonyms for outside data, our own generators' ids as they are."""
    if identities.is_generated_source(spec.source):
        return item.patient_id, item.study_id
    return identities.pseudonym("patient", item.patient_id), identities.pseudonym("study", item.study_id)


def duplicate_note(duplicates: list[tuple[str, str]]) -> str:
    """What the set's description and the importer's output say about skipped duplicates ('' if none)."""
    if not duplicates:
        return ""
    n = len(duplicates)
    examples = ", ".join(f"{dup[:100]} (same as {kept[:100]})" for dup, kept in duplicates[:3])
    return (
        f"{n} file{'s' if n != 1 else ''} had the same content as another file of this import "
        f"and {'were' if n != 1 else 'was'} skipped: {examples}{' …' if n > 3 else ''}"
    )


def _claim_until_commit(session: Session, store: BlobStore) -> list[tuple[str, int]]:
    """A list for the blobs an import creates; they are removed when the transaction ends uncommitted.

    The caller commits (a route, the CLI's session scope, a job's runner), so a failure at its commit
    or a rollback of its own must clean up too; the session's transaction events see every such end.
    """
    created: list[tuple[str, int]] = []
    session.info.setdefault(_CLAIMS, []).append((store, created))
    if not event.contains(session, "after_transaction_end", _drop_uncommitted):
        event.listen(session, "after_commit", _keep_committed)
        event.listen(session, "after_transaction_end", _drop_uncommitted)
    return created


def _keep_committed(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's release commits nothing yet
        session.info.pop(_CLAIMS, None)


def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    for store, created in session.info.pop(_CLAIMS, []):
        try:
            store.remove_created(created)
        except OSError:  # the rollback that got us here must still finish; the files are only litter
            log.warning("could not remove %d blobs of a failed import", len(created), exc_info=True)
