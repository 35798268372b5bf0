"""Jinja2 templates and the one helper routes use to render a page or an htmx fragment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from app.web.csrf import csrf_token

ROOT = Path(__file__).resolve().parents[2]
HTMX_VERSION = "2.0.11"

templates = Jinja2Templates(directory=str(ROOT / "templates"))
templates.env.globals["htmx_src"] = f"/static/js/htmx-{HTMX_VERSION}.min.js"


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _fmt_p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _fmt_num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


templates.env.filters["pct"] = _fmt_pct
templates.env.filters["pval"] = _fmt_p
templates.env.filters["num"] = _fmt_num


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `name` with the request, the CSRF token and the given context."""
    ctx = {"csrf_token": csrf_token(request), **(context or {})}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)


def is_htmx(request: Request) -> bool:
    """Whether htmx made the request (it then expects a fragment)."""
    return request.headers.get("HX-Request") == "true"
