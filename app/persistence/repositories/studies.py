"""Queries over studies, their cases and reader orders. Never commits."""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from app.persistence.models import (
    Case,
    Image,
    ImageSet,
    Study,
    StudyCollaborator,
    StudyImageSet,
    StudyReader,
    User,
)


def get(session: Session, study_id: int, *, lock: bool = False, share: bool = False) -> Study | None:
    """The study; `lock` holds it against concurrent changes, `share` against a concurrent close."""
    stmt = select(Study).where(Study.id == study_id)
    if lock or share:
        # The row as locked replaces the values of an object the session already holds (a permission
        # check loads the study first): a close or launch that committed meanwhile must be seen.
        stmt = stmt.with_for_update(read=not lock).execution_options(populate_existing=True)
    return session.scalar(stmt)


def by_title(session: Session, title: str) -> Study | None:
    """The first study with this title."""
    return session.scalar(select(Study).where(Study.title == title).order_by(Study.id).limit(1))


def list_all(session: Session) -> list[Study]:
    """Every study, newest first."""
    return list(session.scalars(select(Study).order_by(Study.id.desc())))


def _collaborates(user_id: int):
    """A clause: the study has `user_id` among its collaborators."""
    return (
        select(StudyCollaborator.study_id)
        .where(StudyCollaborator.study_id == Study.id, StudyCollaborator.user_id == user_id)
        .exists()
    )


def list_managed(session: Session, user_id: int) -> list[Study]:
    """The studies a researcher owns or collaborates on, newest first."""
    stmt = select(Study).where(or_(Study.created_by_id == user_id, _collaborates(user_id)))
    return list(session.scalars(stmt.order_by(Study.id.desc())))


def manages(session: Session, study: Study, user_id: int) -> bool:
    """Whether `user_id` owns the study or collaborates on it."""
    if study.created_by_id == user_id:
        return True
    return session.get(StudyCollaborator, (study.id, user_id)) is not None


def collaborators(session: Session, study_id: int) -> list[User]:
    """The study's collaborators, by name."""
    stmt = (
        select(User)
        .join(StudyCollaborator, StudyCollaborator.user_id == User.id)
        .where(StudyCollaborator.study_id == study_id)
        .order_by(User.name)
    )
    return list(session.scalars(stmt))


def image_sets(session: Session, study_id: int) -> list[ImageSet]:
    """The sets a study draws from."""
    stmt = (
        select(ImageSet)
        .join(StudyImageSet, StudyImageSet.image_set_id == ImageSet.id)
        .where(StudyImageSet.study_id == study_id)
        .order_by(ImageSet.kind, ImageSet.name)
    )
    return list(session.scalars(stmt))


def readers(session: Session, study_id: int) -> list[User]:
    """Readers assigned to a study."""
    stmt = (
        select(User)
        .join(StudyReader, StudyReader.reader_id == User.id)
        .where(StudyReader.study_id == study_id)
        .order_by(User.name)
    )
    return list(session.scalars(stmt))


def is_reader(session: Session, study_id: int, reader_id: int) -> bool:
    """Whether the reader is assigned to the study."""
    return session.get(StudyReader, (study_id, reader_id)) is not None


def candidates(session: Session, set_ids: list[int]) -> list[tuple[int, str, list[str]]]:
    """(image id, kind, labels) of every image in the sets."""
    stmt = (
        select(Image.id, ImageSet.kind, Image.labels)
        .join(ImageSet, Image.image_set_id == ImageSet.id)
        .where(ImageSet.id.in_(set_ids))
        .order_by(Image.id)
    )
    return [(i, k, list(lab)) for i, k, lab in session.execute(stmt)]


def image_hashes(session: Session, image_ids: list[int]) -> dict[int, str]:
    """Master blob hash per image id."""
    return dict(session.execute(select(Image.id, Image.sha256).where(Image.id.in_(image_ids))).all())


def cases(session: Session, study_id: int) -> list[Case]:
    """All cases of a study."""
    return list(session.scalars(select(Case).where(Case.study_id == study_id).order_by(Case.id)))


def clear_design(session: Session, study_id: int) -> None:
    """Remove the drawn cases, sets and readers of a draft before it is drawn again."""
    session.execute(delete(Case).where(Case.study_id == study_id))
    session.execute(delete(StudyImageSet).where(StudyImageSet.study_id == study_id))
    session.execute(delete(StudyReader).where(StudyReader.study_id == study_id))


def of_reader(session: Session, reader_id: int) -> list[Study]:
    """The launched or closed studies a reader is assigned to, newest first (one query)."""
    stmt = (
        select(Study)
        .join(StudyReader, StudyReader.study_id == Study.id)
        .where(StudyReader.reader_id == reader_id, Study.status != "draft")
        .order_by(Study.id.desc())
    )
    return list(session.scalars(stmt))
