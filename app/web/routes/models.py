"""Models: every generator snapshot with its manifest and samples, its own page with the Fréchet distance
measured over its training, and the default for sampling."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.domain import preferences
from app.domain.errors import NotFound
from app.persistence.snapshots import NAME_PATTERN, find_snapshot, list_snapshots
from app.web.charts import fd_chart, fd_points
from app.web.deps import Admin, AppSettings, Db, Staff
from app.web.images import png_response
from app.web.templating import render

router = APIRouter(prefix="/models")


@router.get("")
def list_models(request: Request, db: Db, user: Staff, settings: AppSettings) -> Response:
    """Generators and classifiers (the store's and the bundled ones)."""
    return render(
        request,
        "pages/models/list.html",
        {
            "user": user,
            "snapshots": list_snapshots(settings.models_dir),
            "classifiers": list_snapshots(settings.models_dir, kind="classifier"),
            "default": preferences.get(db, preferences.DEFAULT_MODEL),
        },
    )


@router.post("/default")
def set_default(
    db: Db,
    admin: Admin,
    settings: AppSettings,
    name: Annotated[str, Form(pattern=NAME_PATTERN.pattern)],
) -> Response:
    """Make a snapshot the one the sampling form proposes."""
    if find_snapshot(settings.models_dir, name) is None:
        raise NotFound("No such model.")
    preferences.put(db, preferences.DEFAULT_MODEL, name, actor_id=admin.id)
    db.commit()
    return RedirectResponse("/models", status_code=303)


@router.get("/{name}/samples.png")
def samples(user: Staff, settings: AppSettings, name: str) -> Response:
    """The sample grid saved beside a snapshot."""
    snapshot = find_snapshot(settings.models_dir, name)
    if snapshot is None or snapshot.grid is None:
        raise NotFound("No sample grid for this model.")
    return png_response(snapshot.grid.read_bytes())


@router.get("/{name}")
def detail(request: Request, db: Db, user: Staff, settings: AppSettings, name: str) -> Response:
    """A generator's manifest, sample grid and Fréchet distance per checkpoint over its training."""
    snapshot = find_snapshot(settings.models_dir, name)
    if snapshot is None:
        raise NotFound("No such model.")
    history = snapshot.manifest.get("fd_history")
    points = [  # with the ratio to the baseline, as the evaluate job reports it
        {**p, "ratio": p["fd"] / p["baseline"] if p.get("baseline") else None}
        for p in (fd_points(history) if isinstance(history, list) else [])
    ]
    return render(
        request,
        "pages/models/detail.html",
        {
            "user": user,
            "s": snapshot,
            "default": preferences.get(db, preferences.DEFAULT_MODEL),
            "points": points,
            "chart": fd_chart(points) if points else None,
            "extractor": snapshot.manifest.get("fd_extractor") or {},
        },
    )
