"""Image sets: list, detail with label histogram and preview, admin upload (zip or files)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from app.core.config import get_settings
from app.domain import importers, labels, uploads
from app.domain.errors import DomainError, NotFound
from app.persistence.repositories import image_sets as repo
from app.persistence.repositories import memorisation
from app.web.deps import Admin, AppSettings, Db, Staff, Store
from app.web.edge import DbId
from app.web.images import png_response
from app.web.templating import render

router = APIRouter(prefix="/image-sets")


def _pacs_host() -> str | None:
    """The configured PACS's host (never its credentials), for the page's import section."""
    url = get_settings().dicomweb_url
    return (urlsplit(url).hostname or url) if url else None


@router.get("")
def list_sets(request: Request, db: Db, user: Staff) -> Response:
    """All image sets, and for admins the upload form."""
    return render(
        request,
        "pages/image_sets/list.html",
        {"user": user, "sets": repo.list_all(db), "error": None, "form": {}, "pacs": _pacs_host()},
    )


@router.get("/{set_id}")
def detail(request: Request, db: Db, user: Staff, set_id: DbId) -> Response:
    """Counts, label histogram and a preview grid."""
    image_set = repo.get(db, set_id)
    if image_set is None:
        raise NotFound("No such image set.")
    hist = repo.label_histogram(db, set_id)
    if not image_set.label_schema:  # e.g. plain GAN samples: no labels is not "No Finding"
        hist = Counter({"Unlabelled": image_set.image_count})
    bars = sorted(hist.items(), key=lambda kv: -kv[1])
    audit = memorisation.latest_audits(db, [set_id]).get(set_id)
    pairs = (
        memorisation.verdicts(db, audit.run_id, set_id=set_id, flagged_only=True, limit=24) if audit else []
    )
    return render(
        request,
        "pages/image_sets/detail.html",
        {
            "user": user,
            "image_set": image_set,
            "bars": bars,
            "max_count": max(hist.values(), default=1),
            "preview": repo.preview(db, set_id),
            "audit": audit,
            "pairs": pairs,
        },
    )


@router.get("/{set_id}/images/{image_id}")
def preview_image(db: Db, store: Store, user: Staff, set_id: DbId, image_id: DbId) -> Response:
    """A stored image, for staff previews only."""
    image = repo.image(db, set_id, image_id)
    if image is None:
        raise NotFound("No such image.")
    return png_response(store.get(image.sha256))


def _uploaded(upload: UploadFile) -> uploads.UploadedFile:
    return uploads.UploadedFile(upload.filename or "", upload.file)


@router.post("")
def upload(
    request: Request,
    db: Db,
    store: Store,
    admin: Admin,
    settings: AppSettings,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    kind: Annotated[str, Form(pattern="^(real|synthetic)$")],
    files: Annotated[list[UploadFile], File()],
    resolution: Annotated[int, Form(ge=importers.MIN_RESOLUTION, le=importers.MAX_RESOLUTION)] = 256,
    label_schema: Annotated[str, Form(max_length=5000)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    labels_csv: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import an uploaded zip (or loose files) with an optional labels CSV, all or nothing.

    A plain (sync) route on purpose: rendering is CPU work and runs in the thread pool, so readers'
    requests keep being served on the event loop while an import runs.
    """
    form = {
        "name": name,
        "kind": kind,
        "resolution": resolution,
        "schema": label_schema,
        "description": description,
    }
    try:
        spec = importers.ImportSpec(
            name=name,
            kind=kind,
            label_schema=labels.parse_schema(label_schema),
            resolution=resolution,
            source="upload",
            description=description,
        )
        image_set = uploads.import_upload(
            db,
            store,
            spec,
            [_uploaded(f) for f in files],
            labels_csv=_uploaded(labels_csv) if labels_csv else None,
            max_bytes=settings.max_upload_bytes,
            actor_id=admin.id,
        )
    except DomainError as exc:
        db.rollback()
        return render(
            request,
            "pages/image_sets/list.html",
            {"user": admin, "sets": repo.list_all(db), "error": str(exc), "form": form, "pacs": _pacs_host()},
            status_code=exc.status_code,
        )
    db.commit()
    return RedirectResponse(f"/image-sets/{image_set.id}", status_code=303)
