"""Researchers: the results dashboard, its self-refreshing progress region, CSV export and codebook."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from app.domain import exports, results
from app.domain.studies import get_study
from app.persistence.db import get_sessionmaker
from app.persistence.repositories import readings as readings_repo
from app.persistence.repositories import studies as repo
from app.web.charts import auc_chart
from app.web.deps import Db, Staff
from app.web.templating import render

router = APIRouter(prefix="/studies/{study_id}")
EXPORT_CHUNK_CHARS = 64 * 1024


@router.get("/results")
def results_page(request: Request, db: Db, user: Staff, study_id: int) -> Response:
    """Per-reader AUC and calls with intervals and chance tests, the MRMC analysis, agreement, findings."""
    study = get_study(db, study_id)
    res = results.study_results(db, study)
    return render(
        request,
        "pages/studies/results.html",
        {
            "user": user,
            "study": study,
            "res": res,
            "chart": auc_chart(res),
            "progress": readings_repo.progress_by_reader(db, study_id),
            "readers": repo.readers(db, study_id),
        },
    )


@router.get("/progress")
def progress_fragment(request: Request, db: Db, user: Staff, study_id: int) -> Response:
    """The progress region alone; it polls itself while the study runs."""
    study = get_study(db, study_id)
    return render(
        request,
        "partials/studies/progress.html",
        {
            "study": study,
            "progress": readings_repo.progress_by_reader(db, study_id),
            "readers": repo.readers(db, study_id),
        },
    )


def _filename(study, suffix: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", study.title).strip("-").lower()[:40] or "study"
    return f"study-{study.id}-{slug}-{suffix}.csv"


@router.get("/export.csv")
def export_csv(db: Db, user: Staff, study_id: int) -> Response:
    """One row per reading, streamed from a server-side cursor in constant memory."""
    study = get_study(db, study_id)

    def stream():
        # Its own session: the request's session closes when the endpoint returns, the stream lives on.
        # Lines go out in ~64 KiB chunks: each chunk of a sync generator costs a thread-pool hop.
        with get_sessionmaker()() as session:
            chunk: list[str] = []
            size = 0
            for line in exports.export_lines(session, study):
                chunk.append(line)
                size += len(line)
                if size >= EXPORT_CHUNK_CHARS:
                    yield "".join(chunk)
                    chunk, size = [], 0
            if chunk:
                yield "".join(chunk)

    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(study, "readings")}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/codebook.csv")
def codebook_csv(db: Db, user: Staff, study_id: int) -> Response:
    """The definition of every export column; states that positive = synthetic."""
    study = get_study(db, study_id)
    return Response(
        "".join(exports.codebook_lines(study)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(study, "codebook")}"'},
    )
