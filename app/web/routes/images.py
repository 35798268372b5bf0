"""Case images by opaque id, after a permission check, with identical headers for real and synthetic."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.core.config import Settings
from app.domain import readings as readings_domain
from app.domain.errors import NotFound
from app.persistence.blobs import BlobStore
from app.web.deps import AppSettings, Db, Store, resolve_user, signed_in
from app.web.images import png_response

router = APIRouter()


@router.get("/img/{opaque_id}")
async def case_image(
    request: Request, db: Db, store: Store, settings: AppSettings, opaque_id: str
) -> Response:
    """A reader gets images of their own launched studies only; staff get any case image."""
    # Async, with the session check and the lookup in one worker thread: as a sync route taking CurrentUser
    # it took two thread hops (the user dependency's, the route's), about 0.3 ms of the 3-5 ms this route
    # costs (bench_paired.py); it is half of every case a reader reads.
    data = await to_thread.run_sync(_image_bytes, request, db, store, settings, opaque_id)
    return png_response(data)


def _image_bytes(
    request: Request, db: Session, store: BlobStore, settings: Settings, opaque_id: str
) -> bytes:
    """The image's bytes if the signed-in user may see it (LoginRequired, NotFound otherwise)."""
    try:
        user = signed_in(resolve_user(request, db, settings))
        if user.role == "reader":
            sha256 = readings_domain.image_for_reader(db, user.id, opaque_id)
        else:
            case = readings_domain.case_by_opaque(db, opaque_id)
            sha256 = case.sha256 if case is not None else None
        # Read-only, and ended here, in this worker thread, rather than in one more thread hop after the
        # response (app.web.deps.get_db). Committed, not rolled back: a ROLLBACK makes psycopg drop every
        # statement it prepared on the connection (it cannot tell what the rollback undid), and the
        # reading room's statements were then parsed and planned afresh on every case.
        db.commit()
    finally:
        db.close()
    if sha256 is None:
        raise NotFound("No such image.")
    return store.get(sha256)
