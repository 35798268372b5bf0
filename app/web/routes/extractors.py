"""Feature extractors: the admin registers the Inception-v3 weights of FID here (an upload, sha256 recorded).

The upload streams from the request's spooled file into the store and is renamed into place once it has
been hashed and checked, so a refused or interrupted upload leaves nothing behind.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from app.domain import extractors
from app.domain.errors import Invalid
from app.web.deps import Admin, AppSettings, Db
from app.web.templating import render

router = APIRouter(prefix="/extractors")
UPLOAD_PATH = "/extractors/inception"


def _page(request: Request, admin, settings, *, error: str | None = None, status_code: int = 200) -> Response:
    return render(
        request,
        "pages/extractors/list.html",
        {
            "user": admin,
            "inception": extractors.registered(settings.models_dir),
            "how": extractors.how_to_obtain(),
            "error": error,
        },
        status_code=status_code,
    )


@router.get("")
def list_extractors(request: Request, admin: Admin, settings: AppSettings) -> Response:
    """What is registered, and how to obtain and register the Inception weights."""
    return _page(request, admin, settings)


@router.post("/inception")
def register_inception(
    request: Request,
    db: Db,
    admin: Admin,
    settings: AppSettings,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Register an uploaded Inception weights file (replacing the previous one)."""
    try:
        if not file.filename:
            raise Invalid("Choose the weights file to upload.")
        extractors.register(
            db,
            settings.models_dir,
            file.file,
            original_name=file.filename,
            registered_by=admin.email,
            actor_id=admin.id,
        )
    except Invalid as exc:
        db.rollback()
        return _page(request, admin, settings, error=str(exc), status_code=exc.status_code)
    db.commit()
    return RedirectResponse("/extractors", status_code=303)
