"""Researchers: the results dashboard, its progress region, the CSV export and codebook, the analysis as
JSON, the iMRMC input file and the printable report."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from app.domain import exports, results
from app.domain.analysis import jsonable
from app.domain.errors import NotFound
from app.domain.figures import FIGURES, figures
from app.domain.readings import UNREADABLE_LABELS
from app.domain.studies import get_study
from app.persistence.db import get_sessionmaker
from app.persistence.repositories import readings as readings_repo
from app.persistence.repositories import studies as repo
from app.web.deps import Db, ManagedStudyId, Staff
from app.web.pdf import PdfUnavailable, html_to_pdf
from app.web.templating import render

router = APIRouter(prefix="/studies/{study_id}")
EXPORT_CHUNK_CHARS = 64 * 1024


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
def export_csv(db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """One row per reading, streamed from a server-side cursor in constant memory."""
    study = get_study(db, study_id)
    # The request's session is closed only once the response has been sent, so its read ends here: it
    # would otherwise hold a second connection for the whole download.
    db.commit()

    def stream():
        # A session of its own, which lives as long as the stream does and holds its connection between
        # the chunks' thread hops (the one request that waits for a thread holding a connection).
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
def report_pdf(request: Request, db: Db, user: Staff, study_id: ManagedStudyId) -> Response:
    """The report as PDF, its figures drawn on the server; 503 with the reason where WeasyPrint cannot run."""
    import vl_convert  # loaded on first use: it carries its own JavaScript engine

    study = get_study(db, study_id)
    context = _report_context(db, user, study)
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
