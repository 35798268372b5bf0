"""Case images by opaque id, after a permission check, with identical headers for real and synthetic."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.domain import readings as readings_domain
from app.domain.errors import NotFound
from app.web.deps import CurrentUser, Db, Store
from app.web.images import png_response

router = APIRouter()


@router.get("/img/{opaque_id}")
def case_image(db: Db, store: Store, user: CurrentUser, opaque_id: str) -> Response:
    """A reader gets images of their own launched studies only; staff get any case image."""
    if user.role == "reader":
        case = readings_domain.reader_may_see_image(db, user.id, opaque_id)
    else:
        case = readings_domain.case_by_opaque(db, opaque_id)
    if case is None:
        raise NotFound("No such image.")
    return png_response(store.get(case.sha256))
