"""Turn source images into an image set, all or nothing, through the one rendering path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import audit
from app.domain.errors import Conflict, Invalid
from app.domain.rendering import ImageRejected, RenderedImage, render, render_array
from app.persistence.blobs import BlobStore
from app.persistence.models import Image, ImageSet

MIN_RESOLUTION, MAX_RESOLUTION = 32, 2048
MAX_REPORTED_ERRORS = 20


@dataclass
class SourceImage:
    """One image to import: bytes to decode (read) or pixels a generator made, plus its labels."""

    name: str
    read: Callable[[], bytes] | None = None
    pixels: np.ndarray | None = None  # (H, W) uint8 or float in [0, 1]
    findings: tuple[str, ...] = ()
    patient_id: str | None = None
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
    if session.scalar(select(ImageSet.id).where(ImageSet.name == spec.name.strip())) is not None:
        raise Conflict(f"An image set named '{spec.name.strip()}' already exists.")


def import_images(
    session: Session,
    store: BlobStore,
    spec: ImportSpec,
    items: Iterable[SourceImage],
    *,
    actor_id: int | None,
    progress: Callable[[int], None] | None = None,
) -> ImageSet:
    """Render every item and add the set with its images; any bad item rejects the whole import.

    Blobs are written as we go (they are content-addressed and invisible until rows point at them);
    the ones this import created are removed again if it fails (unless another import has used them
    since), and no row reaches the session.
    """
    validate_spec(session, spec)
    schema = set(spec.label_schema)
    rows: list[Image] = []
    created: list[tuple[str, int]] = []
    errors: list[str] = []
    seen: set[str] = set()
    try:
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
                stamp = store.put(rendered.sha256, rendered.png)
                if stamp is not None:
                    created.append((rendered.sha256, stamp))
                rows.append(
                    Image(
                        sha256=rendered.sha256,
                        source_name=item.name[:500],
                        labels=list(item.findings),
                        patient_id=item.patient_id,
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
    except BaseException:
        store.remove_created(created)
        raise
    image_set = ImageSet(
        name=spec.name.strip(),
        kind=spec.kind,
        label_schema=list(spec.label_schema),
        resolution=spec.resolution,
        source=spec.source,
        description=spec.description,
        image_count=len(rows),
        created_by_id=actor_id,
    )
    session.add(image_set)
    session.flush()
    for row in rows:
        row.image_set_id = image_set.id
    session.add_all(rows)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="import",
        entity="image_set",
        entity_id=image_set.id,
        new={"name": image_set.name, "kind": spec.kind, "images": len(rows), "source": spec.source},
    )
    return image_set
