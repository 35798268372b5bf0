"""Admin: users, invitation links, deactivation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from app.core.config import get_settings
from app.domain import users as users_domain
from app.domain import web_sessions
from app.domain.errors import DomainError
from app.persistence.repositories import users as users_repo
from app.web.deps import Admin, AppSettings, Db, session_policy
from app.web.edge import DbId
from app.web.templating import render

router = APIRouter(prefix="/admin/users")


def _page(
    request: Request,
    db: Db,
    admin,
    *,
    invite_link: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "user": admin,
        "users": users_repo.list_all(db),
        "open_sessions": web_sessions.open_counts(db, session_policy(get_settings())),
        "invite_link": invite_link,
        "error": error,
    }
    return render(request, "pages/users/list.html", context, status_code=status_code)


@router.get("")
def users_page(request: Request, db: Db, admin: Admin) -> Response:
    """Every account with its role and state."""
    return _page(request, db, admin)


@router.post("")
def create_user(
    request: Request,
    db: Db,
    admin: Admin,
    settings: AppSettings,
    email: Annotated[str, Form(max_length=320)],
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(pattern="^(admin|researcher|reader)$")],
) -> Response:
    """Create an account and show its one-time invitation link (the password is set by its owner)."""
    try:
        user = users_domain.create_user(db, email=email, name=name, role=role, actor_id=admin.id)
        token = users_domain.invite(db, user, ttl_hours=settings.invite_ttl_hours, actor_id=admin.id)
    except DomainError as exc:
        return _page(request, db, admin, error=str(exc), status_code=exc.status_code)
    db.commit()
    return _page(request, db, admin, invite_link=str(request.base_url).rstrip("/") + f"/invite/{token}")


@router.post("/{user_id}/invite")
def reinvite(request: Request, db: Db, admin: Admin, settings: AppSettings, user_id: DbId) -> Response:
    """A fresh invitation link (for a lost link or a forgotten password)."""
    user = users_repo.by_id(db, user_id)
    if user is None:
        return _page(request, db, admin, error="No such user.", status_code=404)
    token = users_domain.invite(db, user, ttl_hours=settings.invite_ttl_hours, actor_id=admin.id)
    db.commit()
    return _page(request, db, admin, invite_link=str(request.base_url).rstrip("/") + f"/invite/{token}")


@router.post("/{user_id}/active")
def set_active(
    request: Request,
    db: Db,
    admin: Admin,
    user_id: DbId,
    active: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    """Deactivate or reactivate an account."""
    try:
        users_domain.set_active(db, user_id, active=active == "yes", actor_id=admin.id)
    except DomainError as exc:
        return _page(request, db, admin, error=str(exc), status_code=exc.status_code)
    db.commit()
    return _page(request, db, admin)


@router.post("/{user_id}/sessions/end")
def end_sessions(request: Request, db: Db, admin: Admin, user_id: DbId) -> Response:
    """Sign an account out everywhere (a lost laptop, a shared workstation left signed in)."""
    if users_repo.by_id(db, user_id) is None:
        return _page(request, db, admin, error="No such user.", status_code=404)
    web_sessions.end_all(db, user_id, reason="admin", actor_id=admin.id)
    db.commit()
    return _page(request, db, admin)
