"""Result queries: the latest reading per reader x case with its truth and labels, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from app.persistence.models import Case, Image, ImageSet, Reading, User

# How each reading was viewed (app.domain.viewing), in export order.
VIEWING_COLUMNS = (
    Reading.screen_w,
    Reading.screen_h,
    Reading.window_w,
    Reading.window_h,
    Reading.device_pixel_ratio,
    Reading.zoom_at_submit,
    Reading.one_to_one_reached,
    Reading.one_to_one_ms,
    Reading.browser,
)


def latest_readings_stmt(study_id: int, *, include_practice: bool):
    """Each reader's newest revision per case (DISTINCT ON), with truth, labels, set, reader and timing."""
    stmt = (
        select(
            Reading.reader_id,
            Reading.case_id,
            Case.truth,
            Reading.verdict,
            Reading.confidence,
            Reading.findings,
            Image.labels,
            ImageSet.label_schema,
            ImageSet.name.label("set_name"),
            User.pseudonym,
            Case.opaque_id,
            Reading.position,
            Reading.presentation,
            Reading.shown_at,
            Reading.submitted_at,
            Reading.unreadable_reason,
        )
        .join(Case, Case.id == Reading.case_id)
        .join(Image, Image.id == Case.image_id)
        .join(ImageSet, ImageSet.id == Image.image_set_id)
        .join(User, User.id == Reading.reader_id)
        .where(Reading.study_id == study_id)
        .ext(distinct_on(Reading.reader_id, Reading.case_id, Reading.presentation))
        .order_by(Reading.reader_id, Reading.case_id, Reading.presentation, Reading.revision.desc())
    )
    if not include_practice:
        stmt = stmt.where(~Reading.is_practice)
    return stmt


def latest_readings(session: Session, study_id: int) -> list[Any]:
    """Rows of latest_readings_stmt for the main (non-practice) cases."""
    return list(session.execute(latest_readings_stmt(study_id, include_practice=False)))


def revised(session: Session, study_id: int) -> dict[tuple[int, int, int], int]:
    """Latest revision number per (reader id, case id, presentation), for answers revised at all."""
    stmt = (
        select(Reading.reader_id, Reading.case_id, Reading.presentation, func.max(Reading.revision))
        .where(Reading.study_id == study_id, Reading.revision > 0)
        .group_by(Reading.reader_id, Reading.case_id, Reading.presentation)
    )
    return {(r, c, p): n for r, c, p, n in session.execute(stmt)}


def export_rows(session: Session, study_id: int) -> Iterator[Any]:
    """Every reading of a study with all it needs for the CSV, streamed from a server-side cursor."""
    stmt = (
        # Plain columns, not the Reading entity: building 100k ORM objects cost a third of the export time.
        select(
            Reading.id,
            Reading.verdict,
            Reading.confidence,
            Reading.findings,
            Reading.free_text,
            Reading.click_x,
            Reading.click_y,
            Reading.position,
            Reading.is_practice,
            Reading.revision,
            Reading.supersedes_id,
            Reading.submitted_at,
            Reading.client_active_ms,
            Case.opaque_id,
            Case.truth,
            Image.labels,
            Image.source_name,
            ImageSet.name,
            ImageSet.label_schema,
            User.pseudonym,
            User.years_experience,
            User.specialty,
            User.board_certified,
            Reading.shown_at,
            Reading.reader_id,
            Reading.case_id,
            Case.image_id,
            Reading.presentation,
            Reading.unreadable_reason,
            *VIEWING_COLUMNS,
        )
        .join(Case, Case.id == Reading.case_id)
        .join(Image, Image.id == Case.image_id)
        .join(ImageSet, ImageSet.id == Image.image_set_id)
        .join(User, User.id == Reading.reader_id)
        .where(Reading.study_id == study_id)
        .order_by(User.pseudonym, Reading.position, Reading.revision)
        .execution_options(yield_per=2000)
    )
    yield from session.execute(stmt)


def latest_viewing(session: Session, study_id: int) -> list[Any]:
    """The viewing columns of each reader's latest non-practice reading per case and showing."""
    stmt = (
        select(*VIEWING_COLUMNS)
        .where(Reading.study_id == study_id, ~Reading.is_practice)
        .ext(distinct_on(Reading.reader_id, Reading.case_id, Reading.presentation))
        .order_by(Reading.reader_id, Reading.case_id, Reading.presentation, Reading.revision.desc())
    )
    return list(session.execute(stmt))
