"""Who may manage a study: its owner (the researcher who created it), the collaborators the owner adds,
and admins. Everyone else is told it does not exist (NotFound, a 404), so that researchers of other
groups cannot learn which studies run, let alone read their results."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.domain import audit_trail
from app.domain.errors import Conflict, Invalid, NotFound
from app.persistence.models import Study, StudyCollaborator, User
from app.persistence.repositories import studies as repo

STAFF = ("admin", "researcher")


def may_manage(session: Session, study: Study, user: User) -> bool:
    """Whether `user` may see and change the study."""
    return user.role == "admin" or (user.role == "researcher" and repo.manages(session, study, user.id))


def visible_study(session: Session, study_id: int, user: User, *, lock: bool = False) -> Study:
    """The study if `user` may manage it; NotFound otherwise, as for a study that does not exist."""
    study = repo.get(session, study_id, lock=lock)
    if study is None or not may_manage(session, study, user):
        raise NotFound("No such study.")
    return study


def studies_of(session: Session, user: User) -> list[Study]:
    """The studies `user` may manage, newest first: all of them for an admin."""
    return repo.list_all(session) if user.role == "admin" else repo.list_managed(session, user.id)


def add_collaborator(session: Session, study: Study, user_id: int, *, actor: User) -> User:
    """Let another researcher (or admin) manage the study; only its owner or an admin may."""
    if actor.role != "admin" and study.created_by_id != actor.id:
        raise Conflict("Only the study's owner or an admin can add collaborators.")
    user = session.get(User, user_id)
    if user is None or user.role not in STAFF or not user.is_active:
        raise Invalid("Only active researchers and admins can collaborate on a study.")
    if user.id == study.created_by_id or repo.manages(session, study, user.id):
        raise Conflict(f"{user.name} already manages this study.")
    session.add(StudyCollaborator(study_id=study.id, user_id=user.id))
    audit_trail.record(
        session,
        actor_id=actor.id,
        action="add_collaborator",
        entity="study",
        entity_id=study.id,
        new={"user_id": user.id},
    )
    return user
