"""Runs: admins start, cancel and retry jobs; researchers watch them. Readers see none of this.

The page's live region is one htmx fragment that polls itself every two seconds until the run ends:
status, progress bar, outputs, loss curves, latest grid and the log's tail.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from app.core.config import get_settings
from app.domain import evaluations, extractors, memorisation
from app.domain import runs as runs_domain
from app.domain.errors import Conflict, DomainError, NotFound
from app.domain.run_kinds import KINDS
from app.jobs import queue
from app.persistence import run_files
from app.persistence.models import FINISHED, RUN_STATUSES, Run
from app.web.charts import fd_chart, fd_points, fid_by_n_chart, loss_chart
from app.web.deps import Admin, AppSettings, Db, Staff
from app.web.edge import DbId
from app.web.images import png_response
from app.web.run_forms import describe
from app.web.templating import is_htmx, render

router = APIRouter(prefix="/runs")
POLL_S = 2


def _reap(db: Db) -> None:
    """Mark silent runs stalled before showing any: an admin must see it even when no worker is left."""
    if runs_domain.reap_stalled(db):
        db.commit()


@router.get("")
def list_runs(request: Request, db: Db, user: Staff, kind: str = "", status: str = "") -> Response:
    """Runs, newest first, filtered by kind and status."""
    _reap(db)
    kind = kind if kind in KINDS else ""
    status = status if status in RUN_STATUSES else ""
    return render(
        request,
        "pages/runs/list.html",
        {
            "user": user,
            "runs": runs_domain.list_runs(db, kind=kind, status=status),
            "kinds": KINDS,
            "statuses": RUN_STATUSES,
            "kind": kind,
            "status": status,
        },
    )


def _form_error(kind, errors: dict[str, str] | None) -> str | None:
    """The form's top message: rule breaches that belong to no single field are spelled out."""
    if not errors:
        return None
    general = [msg for key, msg in errors.items() if key not in kind.config.model_fields]
    return "Please correct: " + "; ".join(general) if general else "Please correct the marked fields."


def _form(request: Request, db: Db, user, kind: str, values: dict, errors=None, status_code: int = 200):
    if kind not in KINDS:
        raise NotFound(f"No kind of run called '{kind}'.")
    return render(
        request,
        "pages/runs/new.html",
        {
            "user": user,
            "kind": KINDS[kind],
            "kinds": KINDS,
            "fields": describe(db, KINDS[kind], values, errors),
            # One token per rendered form: a second submit of the same form finds the first run.
            "request_key": secrets.token_urlsafe(24),
            "error": _form_error(KINDS[kind], errors),
            # The evaluation form says how to obtain the Inception weights while none are registered.
            "how": extractors.how_to_obtain()
            if kind == "evaluation" and extractors.registered(get_settings().models_dir) is None
            else None,
        },
        status_code=status_code,
    )


@router.get("/new")
def new_run(request: Request, db: Db, admin: Admin, kind: str = "") -> Response:
    """Choose a kind, then its form with defaults (query parameters prefill fields)."""
    if not kind:
        return render(request, "pages/runs/kinds.html", {"user": admin, "kinds": KINDS})
    return _form(request, db, admin, kind, {k: v for k, v in request.query_params.items() if k != "kind"})


async def posted_fields(request: Request) -> dict[str, str]:
    """The posted form as text fields (a kind's fields vary, so no fixed form model)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("")
def start(
    request: Request, db: Db, admin: Admin, form: Annotated[dict[str, str], Depends(posted_fields)]
) -> Response:
    """Validate the kind's config, write the run and defer its job in one transaction."""
    kind = str(form.get("kind", ""))
    values = {k: v for k, v in form.items() if k not in ("kind", "csrf_token", "request_key")}
    try:
        run, created = runs_domain.create(
            db, kind, values, actor_id=admin.id, request_key=form.get("request_key") or None
        )
        if created:
            queue.enqueue(db, run)
    except runs_domain.InvalidConfig as exc:
        db.rollback()
        return _form(request, db, admin, kind, values, exc.fields, status_code=exc.status_code)
    db.commit()
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


def _fid_by_n(run: Run):
    """The FID-against-1/n chart of an evaluation that extrapolated, else None."""
    e = (run.outputs or {}).get("evaluation") or {}
    fit = e.get("fid_by_n") or {}
    if not fit.get("points"):
        return None
    metric = "FID" if e.get("extractor_kind") == "inception" else "Fréchet distance"
    return fid_by_n_chart(fit["points"], e["fid_infinity"], fit["slope"], metric=metric)


def _live_context(run: Run, settings) -> dict:
    folder = run_files.run_dir(settings.runs_dir, run.id)
    artefacts = run_files.artefacts_dir(folder, run.attempt)
    grid = run_files.latest_grid(artefacts)
    metrics = run_files.metrics(artefacts) if run.kind == "train_gan" else []
    points = fd_points(metrics)
    return {
        "run": run,
        "kind": KINDS.get(run.kind),
        "finished": run.status in FINISHED,
        "poll_s": POLL_S,
        "chart": loss_chart(metrics) if run.kind == "train_gan" else None,
        "fd_chart": fd_chart(points) if points else None,
        "fid_by_n_chart": _fid_by_n(run),
        "grid_version": int(grid.stat().st_mtime) if grid else None,
        "log": run_files.log_tail(folder),
    }


@router.get("/{run_id}")
def detail(request: Request, db: Db, user: Staff, settings: AppSettings, run_id: DbId) -> Response:
    """A run: its config, who started it, and the live region."""
    _reap(db)
    run = runs_domain.get(db, run_id)
    return render(request, "pages/runs/detail.html", {"user": user, **_live_context(run, settings)})


@router.get("/{run_id}/live")
def live(request: Request, db: Db, user: Staff, settings: AppSettings, run_id: DbId) -> Response:
    """The live region alone, for htmx polling."""
    _reap(db)
    run = runs_domain.get(db, run_id)
    return render(request, "partials/runs/live.html", {"user": user, **_live_context(run, settings)})


@router.get("/{run_id}/synth_vs_real.csv")
def synth_vs_real_csv(db: Db, user: Staff, settings: AppSettings, run_id: DbId) -> Response:
    """The synthetic-versus-real AUROC table as CSV."""
    run = runs_domain.get(db, run_id)
    path = run_files.table_csv(run_files.run_dir(settings.runs_dir, run_id))
    if path is None or not run.outputs.get("synth_vs_real"):
        raise NotFound("This run has no table.")
    headers = {"Content-Disposition": f'attachment; filename="run-{run_id}-synth-vs-real.csv"'}
    return Response(path.read_bytes(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/{run_id}/evaluation.csv")
def evaluation_csv(db: Db, user: Staff, run_id: DbId) -> Response:
    """An evaluation run's result as one CSV row with its n, resolution, preprocessing and extractor."""
    text = evaluations.evaluation_csv(runs_domain.get(db, run_id))
    headers = {"Content-Disposition": f'attachment; filename="run-{run_id}-evaluation.csv"'}
    return Response(text.encode(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/{run_id}/memorisation.csv")
def memorisation_csv(db: Db, user: Staff, run_id: DbId) -> Response:
    """A memorisation run's verdict for every generate it judged."""
    text = memorisation.verdicts_csv(db, runs_domain.get(db, run_id))
    headers = {"Content-Disposition": f'attachment; filename="run-{run_id}-memorisation.csv"'}
    return Response(text.encode(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/{run_id}/grid.png")
def grid(db: Db, user: Staff, settings: AppSettings, run_id: DbId) -> Response:
    """The run's latest sample grid."""
    run = runs_domain.get(db, run_id)
    path = run_files.latest_grid(
        run_files.artefacts_dir(run_files.run_dir(settings.runs_dir, run_id), run.attempt)
    )
    if path is None:
        raise NotFound("This run has no sample grid yet.")
    return png_response(path.read_bytes())


def _after_action(request: Request, db: Db, user, settings, run: Run) -> Response:
    db.commit()
    if is_htmx(request):
        return render(request, "partials/runs/live.html", {"user": user, **_live_context(run, settings)})
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.post("/{run_id}/cancel")
def cancel(request: Request, db: Db, admin: Admin, settings: AppSettings, run_id: DbId) -> Response:
    """Cancel a queued run, or ask a running one to stop."""
    try:
        run = runs_domain.request_cancel(db, run_id, actor_id=admin.id)
        queue.abort(db, run.job_id)
    except DomainError:
        db.rollback()
        raise
    return _after_action(request, db, admin, settings, run)


@router.post("/{run_id}/retry")
def retry(request: Request, db: Db, admin: Admin, settings: AppSettings, run_id: DbId) -> Response:
    """Queue the run again; training resumes from its last checkpoint."""
    try:
        old_job = runs_domain.get(db, run_id).job_id
        run = runs_domain.retry(db, run_id, actor_id=admin.id)
        queue.fail_if_orphaned(db, old_job)
        if not queue.enqueue(db, run):
            raise Conflict("A job for this run is already waiting in the queue.")
    except DomainError:
        db.rollback()
        raise
    return _after_action(request, db, admin, settings, run)
