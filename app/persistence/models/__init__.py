"""Every mapped class, imported so Alembic and the app see the whole schema."""

from app.persistence.models.audit_event import AuditEvent
from app.persistence.models.image_set import Image, ImageSet
from app.persistence.models.memorisation import MemorisationCheck
from app.persistence.models.reading import Reading
from app.persistence.models.run import FINISHED, RUN_STATUSES, Preference, Run
from app.persistence.models.study import (
    Case,
    ReaderCase,
    Study,
    StudyCollaborator,
    StudyImageSet,
    StudyReader,
)
from app.persistence.models.user import ROLES, SESSION_END_REASONS, Invite, LoginAttempt, User, WebSession

__all__ = [
    "FINISHED",
    "ROLES",
    "SESSION_END_REASONS",
    "RUN_STATUSES",
    "Preference",
    "Run",
    "AuditEvent",
    "Case",
    "Image",
    "ImageSet",
    "Invite",
    "LoginAttempt",
    "MemorisationCheck",
    "Reading",
    "ReaderCase",
    "Study",
    "StudyCollaborator",
    "StudyImageSet",
    "StudyReader",
    "User",
    "WebSession",
]
