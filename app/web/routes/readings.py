"""Readers: my studies, instructions, the case page (an htmx region), submit, the end page."""

from __future__ import annotations

import math
import uuid
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from app.core.config import Settings
from app.domain import readings as readings_domain
from app.domain.errors import Conflict, Invalid
from app.domain.viewing import Viewing
from app.persistence.models import Reading, Study
from app.persistence.repositories import readings as repo
from app.persistence.repositories import studies as study_repo
from app.web.deps import AppSettings, Db, Reader, signed_in_reader
from app.web.edge import DbId
from app.web.templating import is_htmx, render

router = APIRouter(prefix="/read")

# Finding shortcut letters, in checklist order; r, s, i, p, f and digits are taken by verdict and viewer.
# u: revise; n: unreadable; t, v, x, z: text box, full screen, pixels, loupe (static/js/keys.js).
FINDING_KEYS = "abcdeghjklmoqwy"


@router.get("")
def my_studies(request: Request, db: Db, user: Reader) -> Response:
    """The reader's studies with their progress."""
    rows = []
    for study in study_repo.of_reader(db, user.id):
        done, total = repo.progress(db, study.id, user.id)
        rows.append({"study": study, "done": done, "total": total})
    return render(request, "pages/readings/my_studies.html", {"user": user, "rows": rows})


@router.get("/{study_id}")
def instructions(request: Request, db: Db, user: Reader, study_id: DbId) -> Response:
    """The study's instructions and a start (or continue) button."""
    study, done, total = readings_domain.readable_progress(db, study_id, user.id)
    return render(
        request,
        "pages/readings/instructions.html",
        {"user": user, "study": study, "done": done, "total": total},
    )


def _case_context(
    study: Study, view: readings_domain.CaseView, notice: str | None = None, previous: Reading | None = None
) -> dict:
    return {
        "study": study,
        "case": view,
        "notice": notice,
        "previous": previous,
        "client_token": uuid.uuid4().hex,
        "finding_keys": dict(zip(study.findings, FINDING_KEYS, strict=False)),
        "unreadable_labels": readings_domain.UNREADABLE_LABELS,
        "viewing_fields": VIEWING_FIELDS,
        "percent": round(100 * view.done / view.total) if view.total else 0,
    }


def _next(request: Request, db: Db, user, study_id: DbId, *, notice: str | None = None) -> Response:
    """The reader's current case region (or the end page), committing its shown time first."""
    # The shown time is this transaction's one write, and its commit need not wait for the disk (0.33 ms
    # of the page's Postgres time). Postgres writes the log out within a fraction of a second anyway; the
    # answer's commit, which waits, flushes this record with its own (the log is written in order) and
    # copies the shown time into the reading. Only a crash of Postgres between the page and the answer
    # can lose it: the answer then has no shown time (its duration is blank), or, if the page is reloaded
    # first, the case is timed from then.
    view = readings_domain.current_case(db, study_id, user.id, shown_time_waits=False)
    db.commit()
    return _case_region(request, user, study_id, view, notice)


def _case_region(
    request: Request,
    user,
    study_id: int,
    view: readings_domain.CaseView | None,
    notice: str | None = None,
    previous: Reading | None = None,
) -> Response:
    """The case region (or page) for `view`, or the way to the end page once the reader has finished."""
    if view is None:
        if is_htmx(request):
            return Response(status_code=200, headers={"HX-Redirect": f"/read/{study_id}/done"})
        return RedirectResponse(f"/read/{study_id}/done", status_code=303)
    ctx = {"user": user, **_case_context(view.study, view, notice, previous)}
    name = "partials/readings/case.html" if is_htmx(request) else "pages/readings/case.html"
    return render(request, name, ctx, headers={"Cache-Control": "no-store"})


@router.get("/{study_id}/case")
async def case_page(request: Request, db: Db, settings: AppSettings, study_id: DbId) -> Response:
    """Always the reader's current case: reloading resumes, and there is no way back."""
    # Async, with the reader check and the case in one worker thread, as the image route does: as a sync
    # route taking Reader it took two thread hops, 0.35 ms each here, on every case a reader reads.
    return await to_thread.run_sync(_case_page, request, db, settings, study_id)


def _case_page(request: Request, db: Session, settings: Settings, study_id: int) -> Response:
    return _next(request, db, signed_in_reader(request, db, settings), study_id)


@router.get("/{study_id}/revise")
def revise(request: Request, db: Db, user: Reader, study_id: DbId) -> Response:
    """The reader's last answered case again, prefilled, where the study allows revising."""
    found = readings_domain.revisable(db, study_id, user.id)
    if found is None:
        return _next(request, db, user, study_id, notice="There is no answer to revise yet.")
    view, previous = found
    return _case_region(request, user, study_id, view, "You are revising your previous answer.", previous)


def _number(field: str, raw: str) -> float | None:
    """An optional finite number from the form: None when blank, Invalid (naming the field) otherwise."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "nan" and "1e999" parse, but no click or time is one
        raise Invalid(f"{field} must be a number.")
    return value


def _whole(field: str, raw: str) -> int | None:
    """An optional whole number from the form: None when blank, Invalid (naming the field) otherwise."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid(f"{field} must be a whole number.") from None


# The form's hidden fields that static/js/conditions.js fills at submit (the browser comes from the request).
VIEWING_FIELDS = (
    "screen_w",
    "screen_h",
    "window_w",
    "window_h",
    "device_pixel_ratio",
    "zoom_at_submit",
    "one_to_one_reached",
    "one_to_one_ms",
)


async def _viewing(
    request: Request,
    screen_w: Annotated[str, Form(max_length=16)] = "",
    screen_h: Annotated[str, Form(max_length=16)] = "",
    window_w: Annotated[str, Form(max_length=16)] = "",
    window_h: Annotated[str, Form(max_length=16)] = "",
    device_pixel_ratio: Annotated[str, Form(max_length=32)] = "",
    zoom_at_submit: Annotated[str, Form(max_length=32)] = "",
    one_to_one_reached: Annotated[str, Form(pattern="^[01]?$")] = "",
    one_to_one_ms: Annotated[str, Form(max_length=16)] = "",
) -> Viewing:
    """The viewing conditions the browser reported with an answer (each may be blank), and its browser."""
    return Viewing(
        screen_w=_whole("screen_w", screen_w),
        screen_h=_whole("screen_h", screen_h),
        window_w=_whole("window_w", window_w),
        window_h=_whole("window_h", window_h),
        device_pixel_ratio=_number("device_pixel_ratio", device_pixel_ratio),
        zoom_at_submit=_number("zoom_at_submit", zoom_at_submit),
        one_to_one_reached={"1": True, "0": False}.get(one_to_one_reached),
        one_to_one_ms=_whole("one_to_one_ms", one_to_one_ms),
        browser=request.headers.get("user-agent"),
    )


@router.post("/{study_id}/case")
async def submit(
    request: Request,
    db: Db,
    settings: AppSettings,
    study_id: DbId,
    viewing: Annotated[Viewing, Depends(_viewing)],
    case_id: Annotated[str, Form(min_length=1, max_length=40)],
    client_token: Annotated[str, Form(min_length=8, max_length=64)],
    verdict: Annotated[str | None, Form(pattern="^(real|synthetic)$")] = None,
    confidence: Annotated[int | None, Form(ge=1, le=5)] = None,
    unreadable_reason: Annotated[str, Form(max_length=20)] = "",
    findings: Annotated[list[str] | None, Form()] = None,
    free_text: Annotated[str | None, Form(max_length=readings_domain.MAX_FREE_TEXT)] = None,
    click_x: Annotated[str, Form(max_length=32)] = "",
    click_y: Annotated[str, Form(max_length=32)] = "",
    active_ms: Annotated[str, Form(max_length=16)] = "",
    revise: Annotated[str, Form(pattern="^1?$")] = "",
) -> Response:
    """Store the answer (committed before responding), then show feedback for practice or the next case."""
    x, y = _number("click_x", click_x), _number("click_y", click_y)
    if (x is None) != (y is None):
        raise Invalid("A click needs both click_x and click_y.")
    answer = readings_domain.Answer(
        case_opaque_id=case_id,
        client_token=client_token,
        verdict=verdict,
        confidence=confidence,
        findings=tuple(dict.fromkeys(findings or ())),
        free_text=(free_text or "").strip() or None,
        click=(x, y) if x is not None and y is not None else None,
        active_ms=_whole("active_ms", active_ms),
        revise=revise == "1",
        unreadable_reason=unreadable_reason.strip() or None,
        viewing=viewing,
    )
    # The reader check, the answer and what follows it in one worker thread, as case_page does.
    return await to_thread.run_sync(_submit, request, db, settings, study_id, answer)


def _submit(
    request: Request, db: Session, settings: Settings, study_id: int, answer: readings_domain.Answer
) -> Response:
    user = signed_in_reader(request, db, settings)
    try:
        # A form posted without JavaScript advances too: the case page its redirect leads to then finds the
        # next case shown, and writes nothing.
        stored = readings_domain.submit_and_advance(db, study_id, user.id, answer)
    except Conflict as exc:
        db.rollback()
        return _next(request, db, user, study_id, notice=str(exc))
    reading = stored.reading
    truth = readings_domain.practice_feedback(db, reading)
    db.commit()
    if truth is not None:
        study, done, total = readings_domain.readable_progress(db, study_id, user.id)
        ctx = {
            "user": user,
            "study": study,
            "study_id": study_id,
            "truth": truth,
            "verdict": reading.verdict,
            "done": done,
            "total": total,
        }
        name = "partials/readings/feedback.html" if is_htmx(request) else "pages/readings/feedback.html"
        return render(request, name, ctx)
    if not is_htmx(request):
        return RedirectResponse(f"/read/{study_id}/case", status_code=303)
    if stored.advanced:  # the answer's transaction put the next case in front of the reader
        return _case_region(request, user, study_id, stored.next_case)
    return _next(request, db, user, study_id)


@router.get("/{study_id}/done")
def done(request: Request, db: Db, user: Reader, study_id: DbId) -> Response:
    """The end page: thanks, and no score."""
    study, answered, total = readings_domain.readable_progress(db, study_id, user.id)
    if answered < total:
        return RedirectResponse(f"/read/{study_id}/case", status_code=303)
    return render(request, "pages/readings/done.html", {"user": user, "study": study, "total": total})
