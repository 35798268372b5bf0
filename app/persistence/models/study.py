"""Studies, their image sets, readers, cases and each reader's stored case order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.persistence.base import Base, CreatedAt


class Study(CreatedAt, Base):
    """A reader study's design; it freezes at launch."""

    __tablename__ = "studies"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'launched', 'closed')", name="status"),
        CheckConstraint(
            "ratio_real >= 0 AND ratio_synthetic >= 0 AND ratio_real + ratio_synthetic > 0", name="ratio"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(20), default="draft", server_default="draft")
    # Seeds the case draw and every reader's order.
    seed: Mapped[int] = mapped_column(BigInteger)
    n_cases: Mapped[int] = mapped_column(Integer)
    ratio_real: Mapped[int] = mapped_column(Integer, default=1)
    ratio_synthetic: Mapped[int] = mapped_column(Integer, default=1)
    stratify_finding: Mapped[str | None] = mapped_column(String(100))
    resolution: Mapped[int] = mapped_column(Integer)
    # The pathology checklist shown to readers (union of the sets' label schemas).
    findings: Mapped[list[str]] = mapped_column(JSONB, default=list)
    ask_findings: Mapped[bool] = mapped_column(Boolean, default=True)
    ask_free_text: Mapped[bool] = mapped_column(Boolean, default=False)
    ask_click: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_revision: Mapped[bool] = mapped_column(Boolean, default=False)
    practice_cases: Mapped[int] = mapped_column(Integer, default=0)
    # Test-retest: this share of the main cases is shown again, unannounced, at least retest_gap cases later.
    retest_percent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retest_gap: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    # The smallest browser window (CSS pixels) the study asks readers to use; readers below it are told
    # before their first case, and the results count readings made in a smaller one.
    min_window_w: Mapped[int | None] = mapped_column(Integer)
    min_window_h: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set at launch, before the first reading can exist; nothing about the design may change after it.
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The latest leakage gate report (app.domain.leakage); a launch runs the gate again.
    leakage: Mapped[dict | None] = mapped_column(JSONB)


class StudyImageSet(Base):
    """An image set a study draws its cases from."""

    __tablename__ = "study_image_sets"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    image_set_id: Mapped[int] = mapped_column(ForeignKey("image_sets.id"), primary_key=True)


class StudyReader(Base):
    """A reader assigned to a study."""

    __tablename__ = "study_readers"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StudyCollaborator(Base):
    """A researcher who may manage a study besides its owner (studies.created_by_id)."""

    __tablename__ = "study_collaborators"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Case(Base):
    """An image drawn into a study, rendered at the study's resolution, known to readers by opaque_id."""

    __tablename__ = "cases"
    __table_args__ = (CheckConstraint("truth IN ('real', 'synthetic')", name="truth"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    opaque_id: Mapped[str] = mapped_column(String(40), unique=True)
    # Hash of the PNG rendered for this study; it is what readers receive.
    sha256: Mapped[str] = mapped_column(String(64))
    # Copied from the image set at draw time so results never depend on later edits.
    truth: Mapped[str] = mapped_column(String(20))
    is_practice: Mapped[bool] = mapped_column(Boolean, default=False)


class ReaderCase(Base):
    """One position in one reader's order, drawn once at launch and never re-drawn."""

    __tablename__ = "reader_cases"
    __table_args__ = (
        UniqueConstraint("reader_id", "case_id", "presentation"),
        UniqueConstraint("study_id", "reader_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    # 1 for the first showing, 2 for a test-retest repeat.
    presentation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A repeat is served under its own opaque id, so that nothing but the image tells it is one;
    # NULL: served under the case's opaque id.
    opaque_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    # Server time at which the case was first shown to this reader.
    shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
