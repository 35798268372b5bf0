"""Readings: append-only, a revision is a new row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.persistence.base import Base

# Why a reader may flag a case unreadable instead of answering; the labels live in app.domain.readings.
UNREADABLE_REASONS = ("quality", "not_chest", "display", "other")


class Reading(Base):
    """A reader's answer for one case; a revision is a new row that supersedes the previous one."""

    __tablename__ = "readings"
    __table_args__ = (
        # One reading per reader x case x presentation (a test-retest repeat is the second presentation);
        # revisions (where allowed) get the next number.
        UniqueConstraint("reader_id", "case_id", "presentation", "revision"),
        # A retried submit carries the same token and finds the stored row.
        UniqueConstraint("reader_id", "client_token"),
        # The reading room's lookups, on every case: how far a reader has got (the highest answered
        # position) and how many cases they answered, each within one reader's entries, however many
        # readings the study holds. It leads with study_id, so it serves a whole study's readings too.
        Index("ix_readings_study_id_reader_id_position", "study_id", "reader_id", "position", "revision"),
        CheckConstraint("verdict IN ('real', 'synthetic')", name="verdict"),
        CheckConstraint("confidence BETWEEN 1 AND 5", name="confidence"),
        # An answer is a verdict with a confidence, or a case flagged unreadable with its reason: never both.
        CheckConstraint(
            "(unreadable_reason IS NULL AND verdict IS NOT NULL AND confidence IS NOT NULL) OR "
            "(unreadable_reason IS NOT NULL AND verdict IS NULL AND confidence IS NULL)",
            name="answer",
        ),
        CheckConstraint(
            "unreadable_reason IS NULL OR unreadable_reason IN ("
            + ", ".join(f"'{r}'" for r in UNREADABLE_REASONS)
            + ")",
            name="unreadable_reason",
        ),
        CheckConstraint(
            "click_x IS NULL OR (click_x BETWEEN 0 AND 1 AND click_y BETWEEN 0 AND 1)", name="click"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    presentation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    client_token: Mapped[str] = mapped_column(String(64))
    # Both blank when the reader flagged the case unreadable instead (then unreadable_reason says why).
    verdict: Mapped[str | None] = mapped_column(String(20))
    confidence: Mapped[int | None] = mapped_column(Integer)
    unreadable_reason: Mapped[str | None] = mapped_column(String(20))
    findings: Mapped[list[str]] = mapped_column(JSONB, default=list)
    free_text: Mapped[str | None] = mapped_column(Text)
    # Giveaway click, in image coordinates normalised to [0, 1].
    click_x: Mapped[float | None] = mapped_column(Float)
    click_y: Mapped[float | None] = mapped_column(Float)
    position: Mapped[int] = mapped_column(Integer)
    is_practice: Mapped[bool] = mapped_column(Boolean, default=False)
    shown_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Time the client saw the reader active on the case (visible page, recent input).
    client_active_ms: Mapped[int | None] = mapped_column(Integer)
    # Viewing conditions the browser reported at submit (blank when it reported none): screen and window in
    # CSS pixels, the device pixel ratio, the viewer's zoom in device pixels per image pixel, and whether and
    # for how long the image was shown at 1:1 or larger. `browser` is the request's User-Agent, shortened.
    screen_w: Mapped[int | None] = mapped_column(Integer)
    screen_h: Mapped[int | None] = mapped_column(Integer)
    window_w: Mapped[int | None] = mapped_column(Integer)
    window_h: Mapped[int | None] = mapped_column(Integer)
    device_pixel_ratio: Mapped[float | None] = mapped_column(Float)
    zoom_at_submit: Mapped[float | None] = mapped_column(Float)
    one_to_one_reached: Mapped[bool | None] = mapped_column(Boolean)
    one_to_one_ms: Mapped[int | None] = mapped_column(Integer)
    browser: Mapped[str | None] = mapped_column(String(200))
