"""Memorisation audit results: per generate, its nearest training film and whether it is a near-copy."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.persistence.base import Base, CreatedAt


class MemorisationCheck(CreatedAt, Base):
    """One audited generate in one `memorisation` run; the run's outputs hold the thresholds it was judged
    by."""

    __tablename__ = "memorisation_checks"
    __table_args__ = (UniqueConstraint("run_id", "image_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    # The nearest training film in classifier features; kept so a researcher can look at the pair.
    nearest_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    distance: Mapped[float] = mapped_column(Float)  # cosine distance in classifier features
    ssim: Mapped[float] = mapped_column(Float)  # with the nearest film, at low resolution
    flagged: Mapped[bool] = mapped_column(Boolean)
