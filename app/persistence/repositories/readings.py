"""Queries over reader orders and readings. Never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BindParameter,
    CompoundSelect,
    Result,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.persistence.models import Case, ReaderCase, Reading, Study, StudyReader


def _upcoming(n: int, *, lock: bool) -> Select:
    """The reader's first `n` positions without a reading (bound: study_id, reader_id); `lock`: FOR UPDATE.

    Readers answer in order (a first answer is accepted only for the case this returns), so the answered
    positions are always a prefix of the order, and the first without a reading is the first after the
    highest answered: one descent of ix_readings_study_id_reader_id_position, at any depth in the study.
    (Asked as "no reading exists for it", Postgres probed the readings once per answered position, and a
    case page cost grew with the square of the reader's progress.) A gap that only a hand-made change to
    the readings could open would be skipped, not served again.
    """
    reached = (
        select(func.max(Reading.position))
        .where(Reading.study_id == bindparam("study_id"), Reading.reader_id == bindparam("reader_id"))
        .scalar_subquery()
    )
    stmt = (
        select(ReaderCase, Case)
        .join(Case, Case.id == ReaderCase.case_id)
        .where(
            ReaderCase.study_id == bindparam("study_id"),
            ReaderCase.reader_id == bindparam("reader_id"),
            ReaderCase.position > func.coalesce(reached, -1),
        )
        .order_by(ReaderCase.position)
        .limit(n)
    )
    return stmt.with_for_update(of=ReaderCase) if lock else stmt


# The reading room's statements are built once, with bound parameters: every case runs them, and building
# one (about 0.15 ms each here) cost more than Postgres takes to answer it.
# The case page reads without a lock: its one write, the shown time, is set once by its own condition
# (mark_shown). A row lock is a write of its own: it gave every page view, a reload too, a transaction id
# whose commit waited for the disk.
_UPCOMING = _upcoming(2, lock=False)
# An answer locks the position it answers, so two answers to one case are taken one after the other, and
# the two after it: the answer's transaction sets the next one's shown time and serves the one after that
# ahead. Locked in the order of the positions, as every answer of the reader takes them: no deadlock. The
# locked rows' values replace those of objects the session already holds: mark_shown writes the shown
# time past the session, and the answer copies it into the reading.
_UNREAD_LOCKED = _upcoming(3, lock=True).execution_options(populate_existing=True)


def _pairs(rows: Result) -> list[tuple[ReaderCase, Case]]:
    return [(row[0], row[1]) for row in rows]


def upcoming(session: Session, study_id: int, reader_id: int) -> list[tuple[ReaderCase, Case]]:
    """The reader's first two positions without a reading (the current case, then the one after)."""
    return _pairs(session.execute(_UPCOMING, {"study_id": study_id, "reader_id": reader_id}))


def unread_locked(session: Session, study_id: int, reader_id: int) -> list[tuple[ReaderCase, Case]]:
    """The reader's first three positions without a reading, locked until the transaction ends."""
    return _pairs(session.execute(_UNREAD_LOCKED, {"study_id": study_id, "reader_id": reader_id}))


_MARK_SHOWN = "UPDATE reader_cases SET shown_at = :at WHERE id = :id AND shown_at IS NULL"
_MARK = {
    True: text(_MARK_SHOWN),
    # set_config(..., true) is SET LOCAL: this transaction's COMMIT returns once its log is written, before
    # it reaches the disk. In RETURNING, it is set only when this statement wrote the shown time, and in
    # the same round trip (a SET LOCAL of its own was 0.25 ms of the case page, bench_paired.py).
    False: text(_MARK_SHOWN + " RETURNING set_config('synchronous_commit', 'off', true)"),
}


def mark_shown(session: Session, position_id: int, at: datetime, *, wait_for_disk: bool) -> None:
    """Set a position's shown time unless it has one. wait_for_disk=False lets this transaction's commit
    return before its log reaches the disk: only for a transaction whose every write a crash of Postgres may
    lose (see app.web.routes.readings._next)."""
    session.execute(_MARK[wait_for_disk], {"id": position_id, "at": at})


def _progress_columns(
    study_id: int | BindParameter[int], reader_id: int | BindParameter[int]
) -> tuple[ScalarSelect[int], ScalarSelect[int]]:
    """(cases answered, cases assigned) of one reader as two scalar subqueries (of values or bound
    parameters)."""
    total = (
        select(func.count())
        .select_from(ReaderCase)
        .where(ReaderCase.study_id == study_id, ReaderCase.reader_id == reader_id)
        .scalar_subquery()
    )
    # Each presentation's first answer is its revision 0.
    done = (
        select(func.count())
        .where(Reading.study_id == study_id, Reading.reader_id == reader_id, Reading.revision == 0)
        .scalar_subquery()
    )
    return done, total


_PROGRESS = select(*_progress_columns(bindparam("study_id"), bindparam("reader_id")))


def progress(session: Session, study_id: int, reader_id: int) -> tuple[int, int]:
    """(cases answered, cases assigned) for one reader, in one query (every answer asks)."""
    answered, assigned = session.execute(_PROGRESS, {"study_id": study_id, "reader_id": reader_id}).one()
    return answered or 0, assigned or 0


def _assigned_study_progress() -> Select:
    """The study with (answered, assigned) if the reader is assigned to it (bound: study_id, reader_id)."""
    study_id, reader_id = bindparam("study_id"), bindparam("reader_id")
    assigned = select(StudyReader).where(StudyReader.study_id == Study.id, StudyReader.reader_id == reader_id)
    done, total = _progress_columns(study_id, reader_id)
    return select(Study, done, total).where(Study.id == study_id, assigned.exists())


_ASSIGNED_STUDY_PROGRESS = {
    False: _assigned_study_progress(),
    # FOR SHARE OF the study row only: an answer holds the study against a concurrent close.
    True: _assigned_study_progress().with_for_update(read=True, of=Study),
}


def assigned_study_progress(
    session: Session, study_id: int, reader_id: int, *, share: bool = False
) -> tuple[Study, int, int] | None:
    """The study if this reader is assigned to it, with (answered, assigned); `share`: FOR SHARE of it."""
    # One query: the reading room asks for both on every case.
    params = {"study_id": study_id, "reader_id": reader_id}
    row = session.execute(_ASSIGNED_STUDY_PROGRESS[share], params).first()
    return (row[0], row[1] or 0, row[2] or 0) if row else None


def progress_by_reader(session: Session, study_id: int) -> dict[int, tuple[int, int]]:
    """(answered, assigned) per reader of a study."""
    totals = dict(
        session.execute(
            select(ReaderCase.reader_id, func.count())
            .where(ReaderCase.study_id == study_id)
            .group_by(ReaderCase.reader_id)
        ).all()
    )
    done = dict(
        session.execute(
            select(Reading.reader_id, func.count())
            .where(Reading.study_id == study_id, Reading.revision == 0)
            .group_by(Reading.reader_id)
        ).all()
    )
    return {rid: (done.get(rid, 0), n) for rid, n in totals.items()}


def reader_case(
    session: Session, study_id: int, reader_id: int, opaque_id: str
) -> tuple[ReaderCase, Case] | None:
    """The reader's order entry served under this opaque id (a repeat's own, or its case's)."""
    entries = (
        select(ReaderCase, Case)
        .join(Case, Case.id == ReaderCase.case_id)
        .where(ReaderCase.study_id == study_id, ReaderCase.reader_id == reader_id)
    )
    # One condition at a time, each answerable from an index: as one OR across the two tables, Postgres
    # could use neither and read the reader's whole order.
    row = session.execute(entries.where(ReaderCase.opaque_id == opaque_id)).first()
    if row is None:  # an order drawn before ids were per reader
        legacy = entries.where(ReaderCase.opaque_id.is_(None), Case.opaque_id == opaque_id)
        row = session.execute(legacy).first()
    return (row[0], row[1]) if row else None


# The values come as parameters: a statement with .values() baked in is built, and its cache key walked,
# on every answer. render_nulls: SQLAlchemy's ORM insert would otherwise leave out the None values and
# compile one statement per pattern of blanks (no column given None has a default).
_INSERT_ONCE = (
    pg_insert(Reading).on_conflict_do_nothing().returning(Reading).execution_options(render_nulls=True)
)


def insert_once(session: Session, values: dict) -> Reading | None:
    """Insert a reading, or nothing where it would repeat one (a token or a revision already stored, by a
    twin that may have committed a moment ago); no savepoint needed, so the transaction stays usable."""
    return session.scalars(_INSERT_ONCE, values).first()


def by_token(session: Session, reader_id: int, client_token: str) -> Reading | None:
    """The reading a reader stored with this client token."""
    return session.scalar(
        select(Reading).where(Reading.reader_id == reader_id, Reading.client_token == client_token)
    )


def latest(session: Session, reader_id: int, case_id: int, presentation: int = 1) -> Reading | None:
    """The reader's newest revision for one presentation of a case."""
    return session.scalar(
        select(Reading)
        .where(
            Reading.reader_id == reader_id, Reading.case_id == case_id, Reading.presentation == presentation
        )
        .order_by(Reading.revision.desc())
        .limit(1)
    )


def order_entry(session: Session, reader_id: int, case_id: int, presentation: int) -> ReaderCase | None:
    """The reader's order entry for one presentation of a case."""
    return session.scalar(
        select(ReaderCase).where(
            ReaderCase.reader_id == reader_id,
            ReaderCase.case_id == case_id,
            ReaderCase.presentation == presentation,
        )
    )


def last_answered(session: Session, study_id: int, reader_id: int) -> tuple[Reading, Case] | None:
    """The reader's most recent reading in the study and its case."""
    stmt = (
        select(Reading, Case)
        .join(Case, Case.id == Reading.case_id)
        .where(Reading.study_id == study_id, Reading.reader_id == reader_id)
        # The newest: answers come in order and only the last may be revised, so it is the highest
        # revision at the highest position, the end of the reader's range of the reading room's index.
        .order_by(Reading.position.desc(), Reading.revision.desc())
        .limit(1)
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def mark_completed(session: Session, study_id: int, reader_id: int) -> None:
    """Record when a reader finished the study."""
    session.execute(
        update(StudyReader)
        .where(
            and_(
                StudyReader.study_id == study_id,
                StudyReader.reader_id == reader_id,
                StudyReader.completed_at.is_(None),
            )
        )
        .values(completed_at=func.now())
    )


def case_truth(session: Session, case_id: int) -> str | None:
    """The truth of one case ("real" or "synthetic")."""
    return session.scalar(select(Case.truth).where(Case.id == case_id))


def _image_for_reader() -> CompoundSelect:
    """The blob hash behind an opaque id served to a reader (bound: opaque_id, reader_id).

    The reader's own id, or the case's study-level id only for orders drawn before ids were per reader: two
    branches, each found through its own unique index. As one OR across the two tables, Postgres read the
    reader's whole order for every image.
    """
    served = (
        select(Case.sha256)
        .join(ReaderCase, ReaderCase.case_id == Case.id)
        .join(Study, Study.id == Case.study_id)
        .where(ReaderCase.reader_id == bindparam("reader_id"), Study.status != "draft")
    )
    own = served.where(ReaderCase.opaque_id == bindparam("opaque_id"))
    legacy = served.where(ReaderCase.opaque_id.is_(None), Case.opaque_id == bindparam("opaque_id"))
    return union_all(own, legacy).limit(1)


_IMAGE_FOR_READER = _image_for_reader()


def image_for_reader(session: Session, reader_id: int, opaque_id: str) -> str | None:
    """The blob hash behind an image id served to this reader, in a study that is not a draft; one column,
    because the image route needs nothing else."""
    return session.scalar(_IMAGE_FOR_READER, {"opaque_id": opaque_id, "reader_id": reader_id})


def case_by_opaque(session: Session, opaque_id: str) -> Case | None:
    """Any case by its study-level opaque id or a reader's."""
    repeat = select(ReaderCase.case_id).where(ReaderCase.opaque_id == opaque_id).scalar_subquery()
    return session.scalar(select(Case).where(or_(Case.opaque_id == opaque_id, Case.id == repeat)))
