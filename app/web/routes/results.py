"""Researchers: the results dashboard, its progress region, the CSV export and codebook, the analysis as
JSON, the iMRMC input file and the printable report."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.responses import Response, StreamingResponse

from app.domain import exports, results
from app.domain.analysis import jsonable
from app.domain.errors import NotFound
from app.domain.figures import FIGURES, figures
from app.domain.readings import UNREADABLE_LABELS
from app.domain.studies import get_study
from app.persistence.models import Study, User
from app.persistence.repositories import readings as readings_repo
from app.persistence.repositories import studies as repo
from app.web.deps import Db, ManagedStudyId, Staff
from app.web.pdf import PdfUnavailable, html_to_pdf
from app.web.templating import render

router = APIRouter(prefix="/studies/{study_id}")
EXPORT_CHUNK_BYTES = 64 * 1024  # per response body chunk: each costs a worker-thread hop
EXPORT_IN_MEMORY_BYTES = 1024 * 1024  # a larger export is spooled to a temporary file
# Per web process: an export holds a worker thread and a connection while it is written, a PDF a worker
# thread while it is laid out.
SLOW_DOWNLOADS_AT_ONCE = 2


@router.get("/results")
def results_page(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """Per-reader AUC and calls with intervals and chance tests, the MRMC analysis, agreement, findings."""
    study = get_study(db, study_id)
    outcome = results.study_results(db, study)
    return render(
        request,
        "pages/results/results.html",
        {
            "user": user,
            "study": study,
            "results": outcome,
            "figs": figures(outcome.analysis),
            "unreadable_labels": UNREADABLE_LABELS,
        },
    )


@router.get("/progress")
def progress_fragment(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """The progress region alone; it polls itself while the study runs."""
    study = get_study(db, study_id)
    return render(
        request,
        "partials/results/progress.html",
        {
            "study": study,
            "progress": readings_repo.progress_by_reader(db, study_id),
            "readers": repo.readers(db, study_id),
        },
    )


def _filename(study, suffix: str, ext: str = "csv") -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", study.title).strip("-").lower()[:40] or "study"
    return f"study-{study.id}-{slug}-{suffix}.{ext}"


def _attachment(study, suffix: str, ext: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{_filename(study, suffix, ext)}"'}


@router.get("/export.csv")
async def export_csv(db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """One row per reading, written out in full (in constant memory) before the download starts."""
    # Written out inside one read, which then ends: the download holds no connection and no snapshot,
    # however slowly the client takes it. Streamed from the cursor, it held both for as long as the client
    # took, so a few stalled downloads could hold the pool (and hold back vacuum) indefinitely. The cost is
    # the time to the first byte: the whole export's (benchmarks/README.md, bench_export.py).
    study, spool, size = await to_thread.run_sync(_write_export, db, study_id, limiter=_downloads_limiter())
    return StreamingResponse(
        _chunks(spool),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{_filename(study, "readings")}"',
            "Content-Length": str(size),  # known now, so the browser shows the download's progress
            "Cache-Control": "no-store",
        },
    )


_DOWNLOADS_LIMITER: RunVar[CapacityLimiter] = RunVar("downloads_limiter")


def _downloads_limiter() -> CapacityLimiter:
    """The worker threads the slow downloads (the export's writing, the PDF's layout) run in, apart from the
    requests' (app.web.main): a few at once wait for each other rather than take the threads the reading
    room is served by."""
    try:
        return _DOWNLOADS_LIMITER.get()
    except LookupError:  # the first slow download in this event loop
        limiter = CapacityLimiter(SLOW_DOWNLOADS_AT_ONCE)
        _DOWNLOADS_LIMITER.set(limiter)
        return limiter


def _write_export(db: Session, study_id: int) -> tuple[Study, BinaryIO, int]:
    """The study, its export spooled (read from the start) and the export's size in bytes; ends the read."""
    study = get_study(db, study_id)
    spool, size = _spooled(exports.export_lines(db, study))
    try:
        db.commit()
    except BaseException:
        spool.close()
        raise
    return study, spool, size


def _spooled(lines: Iterable[str]) -> tuple[BinaryIO, int]:
    """The lines, UTF-8, in a temporary file read from its start (in memory up to EXPORT_IN_MEMORY_BYTES),
    and their size in bytes."""
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_IN_MEMORY_BYTES)  # noqa: SIM115 - handed on open
    try:
        size = 0
        for line in lines:
            size += spool.write(line.encode())
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, size


def _chunks(spool: BinaryIO) -> Iterator[bytes]:
    """The spool in EXPORT_CHUNK_BYTES pieces, closed (and its file deleted) at the end or on disconnect."""
    # Each piece of a sync iterator costs a worker-thread hop; without a connection held, a hop is all it
    # costs. A spool never read (the client left first) is deleted when it is collected.
    with spool:
        while piece := spool.read(EXPORT_CHUNK_BYTES):
            yield piece


@router.get("/codebook.csv")
def codebook_csv(db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """The definition of every export column; states that positive = synthetic."""
    study = get_study(db, study_id)
    return Response(
        "".join(exports.codebook_lines(study)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(study, "codebook")}"'},
    )


@router.get("/analysis.json")
def analysis_json(db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """Every figure of the results page as JSON; `cxrlab analyse study` gives the same from the export."""
    study = get_study(db, study_id)
    body = json.dumps(jsonable(results.study_analysis(db, study)), indent=1, allow_nan=False)
    return Response(body, media_type="application/json", headers=_attachment(study, "analysis", "json"))


@router.get("/ratings.imrmc")
def imrmc(db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """The latest readings in iMRMC's input format (truth rows, then 10-point scores)."""
    study = get_study(db, study_id)
    text = exports.imrmc_text(results.study_reads(db, study), study.title)
    headers = _attachment(study, "ratings", "imrmc")
    return Response(text, media_type="text/plain; charset=utf-8", headers=headers)


def _report_context(db: Db, user, study) -> dict:
    outcome = results.study_results(db, study)
    return {
        "user": user,
        "study": study,
        "results": outcome,
        "figs": figures(outcome.analysis),
        "sets": repo.image_sets(db, study.id),
        "unreadable_labels": UNREADABLE_LABELS,
    }


@router.get("/report")
def report(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """A printable report: design, n, the analysis's tables and figures, and a methods paragraph."""
    return render(request, "pages/results/report.html", _report_context(db, user, get_study(db, study_id)))


@router.get("/report.pdf")
async def report_pdf(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """The report as PDF, its figures drawn on the server; 503 with the reason where WeasyPrint cannot run."""
    return await to_thread.run_sync(_report_pdf, request, db, user, study_id, limiter=_downloads_limiter())


def _report_pdf(request: Request, db: Session, user: User, study_id: int) -> Response:
    import vl_convert  # loaded on first use: it carries its own JavaScript engine

    study = get_study(db, study_id)
    context = _report_context(db, user, study)
    db.commit()  # drawing and laying out take seconds, and need no connection or snapshot
    context["svgs"] = {name: vl_convert.vegalite_to_svg(spec) for name, spec in context["figs"].items()}
    html = render(request, "pages/results/report.html", context).body.decode()
    try:
        body = html_to_pdf(html)
    except PdfUnavailable as exc:
        return Response(str(exc), status_code=503, media_type="text/plain; charset=utf-8")
    return Response(body, media_type="application/pdf", headers=_attachment(study, "report", "pdf"))


FIGURE_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


@router.get("/figures/{name}.{fmt}")
def figure_file(db: Db, user: Staff, study_id: ManagedStudyId, name: str, fmt: str) -> Response:
    """One figure of the results page as SVG or PNG, rendered by vl-convert from the page's own spec."""
    if name not in FIGURES or fmt not in FIGURE_TYPES:
        raise NotFound(f"No figure {name}.{fmt}: choose one of {', '.join(FIGURES)} as SVG or PNG.")
    import vl_convert  # loaded on first use: it carries its own JavaScript engine

    study = get_study(db, study_id)
    spec = figures(results.study_analysis(db, study))[name]
    body = vl_convert.vegalite_to_svg(spec) if fmt == "svg" else vl_convert.vegalite_to_png(spec, scale=2)
    return Response(body, media_type=FIGURE_TYPES[fmt], headers=_attachment(study, name, fmt))
