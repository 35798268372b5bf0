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
        sha256 = readings_domain.image_for_reader(db, user.id, opaque_id)
    else:
        case = readings_domain.case_by_opaque(db, opaque_id)
        sha256 = case.sha256 if case is not None else None
    # Read-only: end the transaction here, in the route's worker thread, rather than in one more thread
    # hop after the response (app.web.deps.get_db); this route is half of every case a reader reads.
    db.close()
    if sha256 is None:
        raise NotFound("No such image.")
    return png_response(store.get(sha256))
