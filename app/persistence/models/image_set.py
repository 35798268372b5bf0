"""Image sets (real or synthetic) and their rendered images."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.persistence.base import Base, CreatedAt


class ImageSet(CreatedAt, Base):
    """A named collection of images that are all real or all synthetic."""

    __tablename__ = "image_sets"
    __table_args__ = (CheckConstraint("kind IN ('real', 'synthetic')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Finding names that labels in this set may use, in display order.
    label_schema: Mapped[list[str]] = mapped_column(JSONB)
    # Side length, in pixels, every image of the set was rendered at.
    resolution: Mapped[int] = mapped_column(Integer)
    # How it was made: "folder", "upload", "chestxray14", "phantoms".
    source: Mapped[str] = mapped_column(String(40))
    image_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Image(CreatedAt, Base):
    """One rendered image: its content hash names the PNG in the store."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("image_set_id", "source_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_set_id: Mapped[int] = mapped_column(ForeignKey("image_sets.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    # Where it came from inside the import (file name, or a generator's index).
    source_name: Mapped[str] = mapped_column(String(500))
    labels: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Outside data's patient and study ids as keyed hashes (app.domain.identities), never in clear.
    patient_id: Mapped[str | None] = mapped_column(String(100))
    study_id: Mapped[str | None] = mapped_column(String(100))
    # "train" / "test" where the source splits its data.
    split: Mapped[str | None] = mapped_column(String(20))
    # Source file, and for synthetic images the model, seed and job when known.
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
