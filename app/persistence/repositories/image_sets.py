"""Queries over image sets and their images. Never commits."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.persistence.models import Image, ImageSet


def list_all(session: Session) -> list[ImageSet]:
    """Every image set, newest first."""
    return list(session.scalars(select(ImageSet).order_by(ImageSet.id.desc())))


def get(session: Session, set_id: int) -> ImageSet | None:
    """One image set."""
    return session.get(ImageSet, set_id)


def by_name(session: Session, name: str) -> ImageSet | None:
    """The set with this name."""
    return session.scalar(select(ImageSet).where(ImageSet.name == name))


def preview(session: Session, set_id: int, *, limit: int = 24) -> list[Image]:
    """The first images of a set, for a preview grid."""
    return list(
        session.scalars(select(Image).where(Image.image_set_id == set_id).order_by(Image.id).limit(limit))
    )


def label_histogram(session: Session, set_id: int) -> Counter[str]:
    """How many images carry each finding ("No Finding" for none)."""
    counts: Counter[str] = Counter()
    for labels in session.scalars(select(Image.labels).where(Image.image_set_id == set_id)):
        counts.update(labels or ["No Finding"])
    return counts


def image(session: Session, set_id: int, image_id: int) -> Image | None:
    """An image of a set."""
    return session.scalar(select(Image).where(Image.id == image_id, Image.image_set_id == set_id))


def names(session: Session) -> dict[int, str]:
    """Every set's name by id."""
    return dict(session.execute(select(ImageSet.id, ImageSet.name)).all())


def image_columns(session: Session, set_id: int, *columns: str) -> list[Row]:
    """Named columns of a set's images, in id order (the order every task loads films in); each row has
    the columns as attributes, e.g. image_columns(s, 1, "sha256", "patient_id")[0].patient_id."""
    stmt = select(*(getattr(Image, c) for c in columns)).where(Image.image_set_id == set_id)
    return list(session.execute(stmt.order_by(Image.id)).all())


def hashes(session: Session, set_id: int) -> list[str]:
    """The content hashes of a set's images, in id order."""
    return list(session.scalars(select(Image.sha256).where(Image.image_set_id == set_id).order_by(Image.id)))


def label_lists(session: Session, set_id: int) -> list[list[str] | None]:
    """Each image's findings, in id order."""
    return list(session.scalars(select(Image.labels).where(Image.image_set_id == set_id).order_by(Image.id)))


def first_provenance(session: Session, set_id: int) -> dict[str, Any] | None:
    """The provenance of a set's first image (generated sets record their generator, classifier, ...)."""
    stmt = select(Image.provenance).where(Image.image_set_id == set_id).order_by(Image.id).limit(1)
    return session.scalar(stmt)


def provenance_values(session: Session, set_id: int, key: str) -> list[str]:
    """The distinct values of one provenance key over a set's images."""
    stmt = select(Image.provenance[key].astext).where(Image.image_set_id == set_id).distinct()
    return list(session.scalars(stmt))
