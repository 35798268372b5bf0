"""The study form's planning region: its context from the form's values (app.domain.planning).

Used by the form page, which shows the region on first render, and by GET /planning, which returns it
alone when a value changes. Keys carry a plan_ prefix: the form's own context (its error, its readers)
sits beside them.
"""

from __future__ import annotations

from app.domain import planning
from app.domain.errors import DomainError
from app.web.deps import Db


def _int(value: str | None, default: int) -> int | None:
    """A whole number from a query value; None when it is not one (the fragment says so)."""
    text = (value or "").strip()
    if not text:
        return default
    # isascii: "²".isdigit() is true, but int() refuses it.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 6 else None


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
    pilots = planning.pilots(db)
    context = {"plan_auc": auc, "plan_pilot": numbers["pilot_id"], "plan_pilots": pilots, "plan": None}
    if None in numbers.values() or auc != auc:  # auc != auc: NaN
        return {**context, "plan_error": "Give whole numbers for cases and the ratio, and an AUC like 0.6."}
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
    except (DomainError, ValueError) as exc:  # ValueError: a pilot with no variance left to test against
        return {**context, "plan_error": str(exc)}
    return {**context, "plan_error": None, "plan_readers": readers}
