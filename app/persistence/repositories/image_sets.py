"""Queries over image sets and their images. Never commits."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
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
