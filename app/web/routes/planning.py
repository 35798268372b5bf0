"""Researchers: the planning region of the study form (power for readers x cases), one htmx fragment."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.domain import planning
from app.domain.errors import DomainError
from app.web.deps import Db, Staff
from app.web.templating import render

router = APIRouter(prefix="/planning")


def _int(value: str | None, default: int) -> int | None:
    """A whole number from a query value; None when it is not one (the fragment says so)."""
    text = (value or "").strip()
    if not text:
        return default
    return int(text) if text.isdigit() and len(text) <= 6 else None


def plan_context(db: Db, values: dict[str, str | None], readers: int) -> dict:
    """The fragment's context from the form's values; bad values become a message, not an error page."""
    try:
        auc = float(values.get("plan_auc") or planning.DEFAULT_AUC)
    except ValueError:
        auc = float("nan")
    numbers = {
        "cases": _int(values.get("n_cases"), 20),
        "ratio_real": _int(values.get("ratio_real"), 1),
        "ratio_synthetic": _int(values.get("ratio_synthetic"), 1),
        "pilot_id": _int(values.get("plan_pilot"), 0),
    }
    context = {"auc": auc, "pilot_id": numbers["pilot_id"], "pilots": planning.pilots(db), "plan": None}
    if None in numbers.values() or auc != auc:  # auc != auc: NaN
        return {**context, "error": "Give whole numbers for cases and the ratio, and an AUC such as 0.6."}
    try:
        context["plan"] = planning.plan(
            db,
            auc=auc,
            readers=max(readers, 1),
            cases=numbers["cases"],
            ratio_real=numbers["ratio_real"],
            ratio_synthetic=numbers["ratio_synthetic"],
            pilot_id=numbers["pilot_id"] or None,
        )
    except DomainError as exc:
        return {**context, "error": str(exc)}
    return {**context, "error": None, "plan_readers": readers}


@router.get("")
def plan_fragment(request: Request, db: Db, user: Staff) -> Response:
    """The planning region alone, recomputed from the study form's current values."""
    q = request.query_params
    fields = ("plan_auc", "plan_pilot", "n_cases", "ratio_real", "ratio_synthetic")
    context = plan_context(db, {f: q.get(f) for f in fields}, len(q.getlist("reader_ids")))
    return render(request, "partials/studies/plan.html", context)
