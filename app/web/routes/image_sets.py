"""Image sets: list, detail with label histogram and preview, admin upload (zip or files)."""

from __future__ import annotations

import zipfile
from collections import Counter
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from app.core.config import get_settings
from app.domain import importers, labels, sources
from app.domain.errors import DomainError, Invalid, NotFound
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


def _read_limited(upload: UploadFile, budget: list[int]) -> bytes:
    data = upload.file.read()
    budget[0] -= len(data)
    if budget[0] < 0:
        raise Invalid("The uploaded files are larger than the upload limit.")
    return data


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
        finding_schema = labels.parse_schema(label_schema)
        budget = [settings.max_upload_bytes]
        labels_data = _read_limited(labels_csv, budget) if labels_csv and labels_csv.filename else None
        real_files = [f for f in files if f.filename]
        if not real_files:
            raise Invalid("Choose a zip file or image files to upload.")
        if len(real_files) == 1 and real_files[0].filename.lower().endswith(".zip"):
            try:
                archive = zipfile.ZipFile(real_files[0].file)
            except zipfile.BadZipFile as exc:
                raise Invalid("The zip file is damaged or not a zip file.") from exc
            items = sources.zip_images(
                archive, labels_data=labels_data, schema=finding_schema, max_bytes=settings.max_upload_bytes
            )
        else:
            loose = [(f.filename, _read_limited(f, budget)) for f in real_files]
            items = sources.uploaded_images(loose, labels_data=labels_data, schema=finding_schema)
        spec = importers.ImportSpec(
            name=name,
            kind=kind,
            label_schema=finding_schema,
            resolution=resolution,
            source="upload",
            description=description,
        )
        try:
            image_set = importers.import_images(db, store, spec, items, actor_id=admin.id)
        except zipfile.BadZipFile as exc:
            raise Invalid(f"The zip file is damaged: {exc}.") from exc
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
