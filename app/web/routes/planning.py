"""Researchers: the planning region of the study form (power for readers x cases), one htmx fragment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.web.deps import Db, Staff
from app.web.planning import plan_context
from app.web.templating import render

router = APIRouter(prefix="/planning")


@router.get("")
def plan_fragment(request: Request, db: Db, user: Staff) -> Response:
    """The planning region alone, recomputed from the study form's current values."""
    q = request.query_params
    fields = ("plan_auc", "plan_pilot", "n_cases", "ratio_real", "ratio_synthetic")
    context = plan_context(db, {f: q.get(f) for f in fields}, len(q.getlist("reader_ids")))
    return render(request, "partials/planning/plan.html", context)
