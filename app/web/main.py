"""The ASGI application: `app.web.main:app`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp

from app.core.config import get_settings
from app.domain.errors import DomainError
from app.web.csrf import verify_csrf
from app.web.deps import IntakeRequired, LoginRequired, RoleRequired
from app.web.edge import refuse_control_characters
from app.web.headers import SecurityHeadersMiddleware
from app.web.limits import BodyLimitMiddleware
from app.web.routes import (
    auth,
    extractors,
    image_sets,
    images,
    models,
    planning,
    readings,
    results,
    runs,
    studies,
    users,
)
from app.web.templating import ROOT, is_htmx, render


def _error(request: Request, status: int, message: str) -> Response:
    """An error as a small page, or as a fragment htmx swaps into the region's error slot."""
    name = "partials/error.html" if is_htmx(request) else "pages/error.html"
    headers = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"} if is_htmx(request) else None
    return render(request, name, {"status": status, "message": message}, status_code=status, headers=headers)


def _field_errors(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "The form was not filled in correctly — " + "; ".join(parts[:8])


class _App(FastAPI):
    """FastAPI with the security headers as its outermost layer: Starlette puts its error middleware outside
    every added middleware, so the 500 page it writes would otherwise go out without them."""

    hsts = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack(), hsts=self.hsts)


SERVER_ERROR = (
    "The server could not answer this request; the error has been logged. Nothing you sent before this "
    "request is affected. Try again, and tell the study's organisers if it happens again."
)


def _server_error(request: Request, exc: Exception) -> Response:
    """The 500 page, drawn without templates or the session: whatever failed may be one of them."""
    if is_htmx(request):
        body = f'<p class="error" role="alert">{SERVER_ERROR}</p>'
        return HTMLResponse(body, 500, headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>500 · CXR Realism Lab</title>'
        '<link rel="stylesheet" href="/static/css/app.css"></head><body><main><section class="card narrow">'
        f'<h1>Something went wrong</h1><p class="error">{SERVER_ERROR}</p><p><a href="/">Back to the start '
        "page</a></p></section></main></body></html>"
    )
    return HTMLResponse(page, 500)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Before serving: freeze what the process built (once per process), and size its worker threads.

    Modules, routes, templates and the ORM's mappers are about 180,000 objects that live as long as the
    process. Python's full collection scans every tracked object: 62 ms here, and every request the
    process is serving waits it out; it came every few hundred requests and made bench_reading's crowd
    tail (p99 60-120 ms at a quarter of a core). Frozen, they are left out of every later collection.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
    # A request's database work runs in one of anyio's worker threads: as many threads as the pool keeps
    # connections, so the threads do not open and close connections past the pool's size.
    to_thread.current_default_thread_limiter().total_tokens = get_settings().db_pool_size
    yield


def create_app() -> FastAPI:
    """Build the application from the settings."""
    settings = get_settings()
    settings.require_secret()
    # Control characters first: a NUL in any field is refused before anything reads it (the CSRF check too).
    edge = [Depends(refuse_control_characters), Depends(verify_csrf)]
    # No schema either: the API is the HTML forms, and /openapi.json would map every route for anyone.
    app = _App(
        title="CXR Realism Lab",
        dependencies=edge,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.hsts = settings.secure_cookies
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="cxrlab_session",
        same_site="lax",
        https_only=settings.secure_cookies,
        # The browser may forget the cookie at the session's lifetime; the server ends it there anyway.
        max_age=settings.session_lifetime_s,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_form_bytes,
        upload_bytes=settings.max_upload_bytes,
        upload_paths=("/image-sets", extractors.UPLOAD_PATH),
    )
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    # The reading room's routes first: a request is matched against the routes in order, and the case page,
    # its image and the answer are most of the traffic (no two routers share a path).
    for module in (
        readings,
        images,
        auth,
        users,
        image_sets,
        studies,
        planning,
        results,
        runs,
        models,
        extractors,
    ):
        app.include_router(module.router)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Served without touching the session: browsers fetch it beside pages, sometimes without cookies.
        return FileResponse(ROOT / "static" / "favicon.png", media_type="image/png")

    app.add_exception_handler(Exception, _server_error)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = "/login?next=" + request.url.path if request.method == "GET" else "/login"
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(IntakeRequired)
    async def _intake(request: Request, exc: IntakeRequired) -> Response:
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": "/intake"})
        return RedirectResponse("/intake", status_code=303)

    @app.exception_handler(RoleRequired)
    async def _forbidden(request: Request, exc: RoleRequired) -> Response:
        return _error(request, 403, "Your account does not have access to this page.")

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return _error(request, exc.status_code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _error(request, 422, _field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "The request could not be handled."
        if exc.status_code == 404 and message == "Not Found":
            message = "There is nothing at this address."
        return _error(request, exc.status_code, message)

    return app


app = create_app()
