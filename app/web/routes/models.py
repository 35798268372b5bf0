"""Models: every stored generator with its manifest and samples, its own page with the Fréchet distance
measured over its training, and the default for sampling."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from app.domain import preferences
from app.domain.errors import NotFound
from app.persistence import model_store
from app.web.charts import fd_chart, fd_points
from app.web.deps import Admin, AppSettings, Db, Staff
from app.web.images import png_response
from app.web.templating import render

router = APIRouter(prefix="/models")


@router.get("")
def models_page(request: Request, db: Db, user: Staff, settings: AppSettings) -> Response:
    """Generators and classifiers (the store's and the bundled ones)."""
    return render(
        request,
        "pages/models/list.html",
        {
            "user": user,
            "generators": model_store.list_models(settings.models_dir),
            "classifiers": model_store.list_models(settings.models_dir, kind="classifier"),
            "default": preferences.get(db, preferences.DEFAULT_MODEL),
        },
    )


@router.post("/default")
def set_default(
    db: Db,
    admin: Admin,
    settings: AppSettings,
    name: Annotated[str, Form(pattern=model_store.NAME_PATTERN.pattern)],
) -> Response:
    """Make a model the one the sampling form proposes."""
    if model_store.find_model(settings.models_dir, name) is None:
        raise NotFound("No such model.")
    preferences.put(db, preferences.DEFAULT_MODEL, name, actor_id=admin.id)
    db.commit()
    return RedirectResponse("/models", status_code=303)


@router.get("/{name}/samples.png")
def samples(user: Staff, settings: AppSettings, name: str) -> Response:
    """The sample grid saved beside a model."""
    model = model_store.find_model(settings.models_dir, name)
    if model is None or model.grid is None:
        raise NotFound("No sample grid for this model.")
    return png_response(model.grid.read_bytes())


@router.get("/{name}")
def detail(request: Request, db: Db, user: Staff, settings: AppSettings, name: str) -> Response:
    """A generator's manifest, sample grid and Fréchet distance per checkpoint over its training."""
    model = model_store.find_model(settings.models_dir, name)
    if model is None:
        raise NotFound("No such model.")
    history = model.manifest.get("fd_history")
    points = [  # with the ratio to the baseline, as the evaluation job reports it
        {**p, "ratio": p["fd"] / p["baseline"] if p.get("baseline") else None}
        for p in (fd_points(history) if isinstance(history, list) else [])
    ]
    return render(
        request,
        "pages/models/detail.html",
        {
            "user": user,
            "s": model,
            "default": preferences.get(db, preferences.DEFAULT_MODEL),
            "points": points,
            "chart": fd_chart(points) if points else None,
            "extractor": model.manifest.get("fd_extractor") or {},
        },
    )
