"""Sign-in, sign-out, invitation links and the reader intake."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from app.domain import users as users_domain
from app.domain import web_sessions
from app.domain.errors import DomainError, TooMany
from app.persistence.models import User
from app.web.deps import SESSION_KEY, AppSettings, CurrentUser, Db, optional_user
from app.web.templating import render

router = APIRouter()


def home_for(role: str) -> str:
    """Where a user lands after signing in."""
    return "/read" if role == "reader" else "/studies"


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: an open redirect would let a phishing link bounce through us.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return None


# Why the last session ended, as the sign-in page says it.
ENDED = {
    "idle": "You were signed out after a time without activity. Sign in again to go on; "
    "every answer you gave is saved.",
    "expired": "Your session reached its time limit. Sign in again to go on; every answer you gave is saved.",
}


def _start_session(request: Request, db: Db, user) -> None:
    """A fresh server-side session for the signed-in user, in a fresh cookie (no fixation: the anonymous
    cookie's CSRF token is dropped too). The caller commits."""
    client = request.client.host if request.client else "unknown"
    token = web_sessions.start(db, user, client=client, user_agent=request.headers.get("user-agent", ""))
    request.session.clear()
    request.session[SESSION_KEY] = token


@router.get("/")
def home(user: Annotated[User | None, Depends(optional_user)]) -> Response:
    """Send the visitor to their start page, or to sign in."""
    if user is None:
        return RedirectResponse("/login", status_code=303)
    if user.needs_intake:
        return RedirectResponse("/intake", status_code=303)
    return RedirectResponse(home_for(user.role), status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form (saying why the last session ended, if a clock ended it)."""
    notice = ENDED.get(request.session.pop("ended", None) or "")
    return render(
        request, "pages/auth/login.html", {"next": _safe_next(next), "error": None, "notice": notice}
    )


@router.post("/login")
def login(
    request: Request,
    db: Db,
    settings: AppSettings,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    """Check the credentials (rate-limited) and start a session."""
    client = request.client.host if request.client else "unknown"
    limits = users_domain.LoginLimits(settings.login_max_failures, settings.login_window_s)
    try:
        user = users_domain.authenticate(db, email=email, password=password, client=client, limits=limits)
    except TooMany as exc:
        return render(
            request, "pages/auth/login.html", {"next": _safe_next(next), "error": str(exc)}, status_code=429
        )
    if user is None:
        db.commit()  # keep the failed attempt for the throttle
        return render(
            request,
            "pages/auth/login.html",
            {"next": _safe_next(next), "error": "Wrong email or password.", "email": email},
            status_code=401,
        )
    _start_session(request, db, user)
    db.commit()
    target = "/intake" if user.needs_intake else (_safe_next(next) or home_for(user.role))
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, db: Db) -> Response:
    """End the session on the server (a copy of the cookie stops working too) and in the browser."""
    token = request.session.get(SESSION_KEY)
    if isinstance(token, str):
        web_sessions.end(db, token)
        db.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/invite/{token}")
def invite_page(request: Request, db: Db, token: str) -> Response:
    """The page on which an invited user sets a password."""
    _, user = users_domain.pending_invite(db, token)
    return render(request, "pages/auth/invite.html", {"invitee": user, "token": token, "error": None})


@router.post("/invite/{token}")
def accept_invite(
    request: Request,
    db: Db,
    token: str,
    password: Annotated[str, Form(max_length=1000)],
    confirm: Annotated[str, Form(max_length=1000)],
) -> Response:
    """Set the password, spend the invitation and sign the user in."""
    _, invitee = users_domain.pending_invite(db, token)
    if password != confirm:
        return render(
            request,
            "pages/auth/invite.html",
            {"invitee": invitee, "token": token, "error": "The two passwords differ."},
            status_code=422,
        )
    try:
        user = users_domain.accept_invite(db, token, password=password)
    except DomainError as exc:
        return render(
            request,
            "pages/auth/invite.html",
            {"invitee": invitee, "token": token, "error": str(exc)},
            status_code=exc.status_code,
        )
    _start_session(request, db, user)
    db.commit()
    return RedirectResponse("/intake" if user.needs_intake else home_for(user.role), status_code=303)


@router.get("/intake")
def intake_page(request: Request, user: CurrentUser) -> Response:
    """The reader's intake questions."""
    return render(
        request,
        "pages/auth/intake.html",
        {"user": user, "specialties": users_domain.SPECIALTIES, "error": None},
    )


@router.post("/intake")
def intake(
    request: Request,
    db: Db,
    user: CurrentUser,
    years_experience: Annotated[int, Form(ge=0, le=70)],
    specialty: Annotated[str, Form(max_length=100)],
    board_certified: Annotated[str, Form(pattern="^(yes|no)$")],
) -> Response:
    """Store the intake answers."""
    users_domain.save_intake(
        db,
        user,
        years_experience=years_experience,
        specialty=specialty,
        board_certified=board_certified == "yes",
    )
    db.commit()
    return RedirectResponse(home_for(user.role), status_code=303)
