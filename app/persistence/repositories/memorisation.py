"""Queries over memorisation audit results: the latest audit of each image. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from app.persistence.models import Case, Image, MemorisationCheck


@dataclass(frozen=True)
class SetAudit:
    """The latest audit of a set: its run, how many generates it judged and how many it flagged."""

    run_id: int
    audited: int
    flagged: int


def latest_audits(session: Session, set_ids: list[int]) -> dict[int, SetAudit]:
    """Per image set, its most recent audit (sets never audited are absent)."""
    latest = (
        select(Image.image_set_id, func.max(MemorisationCheck.run_id).label("run_id"))
        .join(Image, Image.id == MemorisationCheck.image_id)
        .where(Image.image_set_id.in_(set_ids))
        .group_by(Image.image_set_id)
        .subquery()
    )
    rows = session.execute(
        select(
            latest.c.image_set_id,
            latest.c.run_id,
            func.count(),
            func.count().filter(MemorisationCheck.flagged),
        )
        .join(MemorisationCheck, MemorisationCheck.run_id == latest.c.run_id)
        .join(Image, (Image.id == MemorisationCheck.image_id) & (Image.image_set_id == latest.c.image_set_id))
        .group_by(latest.c.image_set_id, latest.c.run_id)
    ).all()
    return {set_id: SetAudit(run_id, audited, flagged) for set_id, run_id, audited, flagged in rows}


def study_flags(session: Session, study_id: int) -> dict[int, bool]:
    """Per image of a study's cases, the latest audit's verdict (images never audited are absent)."""
    rows = session.execute(
        select(MemorisationCheck.image_id, MemorisationCheck.flagged)
        .where(MemorisationCheck.image_id.in_(select(Case.image_id).where(Case.study_id == study_id)))
        .ext(distinct_on(MemorisationCheck.image_id))
        .order_by(MemorisationCheck.image_id, MemorisationCheck.run_id.desc())
    ).all()
    return dict(rows)


def verdicts(
    session: Session,
    run_id: int,
    *,
    set_id: int | None = None,
    flagged_only: bool = False,
    limit: int | None = None,
) -> list[Any]:
    """One audit's verdicts, nearest first: image_id, source_name, nearest_id, nearest_set_id,
    nearest_name, distance, ssim, flagged."""
    nearest = Image.__table__.alias("nearest")
    query = (
        select(
            MemorisationCheck.image_id,
            Image.source_name,
            MemorisationCheck.nearest_image_id.label("nearest_id"),
            nearest.c.image_set_id.label("nearest_set_id"),
            nearest.c.source_name.label("nearest_name"),
            MemorisationCheck.distance,
            MemorisationCheck.ssim,
            MemorisationCheck.flagged,
        )
        .join(Image, Image.id == MemorisationCheck.image_id)
        .outerjoin(nearest, nearest.c.id == MemorisationCheck.nearest_image_id)
        .where(MemorisationCheck.run_id == run_id)
        .order_by(MemorisationCheck.distance)
        .limit(limit)
    )
    if set_id is not None:
        query = query.where(Image.image_set_id == set_id)
    if flagged_only:
        query = query.where(MemorisationCheck.flagged)
    return list(session.execute(query).all())


def add_checks(session: Session, rows: list[MemorisationCheck]) -> None:
    """Add one audit run's per-generate results."""
    session.add_all(rows)
