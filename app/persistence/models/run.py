"""Runs: one row per admin-started job (training, sampling, import…), its progress and outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.persistence.base import Base, CreatedAt
from app.persistence.models.user import User

# "stalled": the worker stopped sending heartbeats while the run was running (killed, machine lost).
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "stalled")
FINISHED = frozenset({"succeeded", "failed", "cancelled", "stalled"})


class Run(CreatedAt, Base):
    """A job an admin started; the worker that runs it reports progress and outcome here."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    # The kind's pydantic config, validated before the row was written.
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # A short human line: "16 px, fade-in 40 %", "120 / 200 images".
    progress_note: Mapped[str] = mapped_column(String(200), default="", server_default="")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_by: Mapped[User | None] = relationship(lazy="joined", viewonly=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What it made: {"image_set_id": 3}, {"model": "run-7"}, the last metrics line.
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    # 1 for the first try; a retry bumps it and, for training, resumes from the last checkpoint.
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The procrastinate job of the current attempt.
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # The New-run form's one-time token: a double click finds the run the first click made.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # host:pid of the worker running the current attempt.
    worker: Mapped[str | None] = mapped_column(String(200))


class Preference(Base):
    """A site-wide choice an admin made, e.g. the default model for sampling."""

    __tablename__ = "preferences"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
