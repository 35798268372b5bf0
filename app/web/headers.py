"""Security headers on every response: pages, fragments, static files, images and downloads.

Decisions:
- script-src 'self' without 'unsafe-inline': every script is a file under static/js/, and behaviour that was
  an inline handler is a delegated listener there (static/js/actions.js). A script injected into a page, as a
  tag or an on*= attribute, does not run.
- 'unsafe-eval' only on the pages that draw Vega figures (FIGURE_PAGES: the study results page and its
  printable report). Vega compiles its expressions with the Function constructor, and no CSP-safe
  interpreter is vendored; every other response stays strict. A new page that draws figures must be added
  to FIGURE_PAGES, or its figures fail with a CSP violation (tests/browser/test_csp.py watches for those).
- style-src 'self' 'unsafe-inline': the job charts are server-drawn SVG with their own <style> element,
  vega-embed and htmx each inject a <style> element, the report has its print rules inline, and progress
  bars set their width in a style attribute. Injected CSS cannot run script and templates autoescape, so
  scripts get the strict policy and styles do not.
- img-src 'self': the viewer draws /img/... onto a canvas and no page uses data: or blob: images.
- Referrer-Policy same-origin rather than no-referrer: no address (study ids, opaque image ids) leaves the
  site, while same-origin form posts keep a real Origin header (no-referrer makes it "null").
- Strict-Transport-Security only with SECURE_COOKIES, the setting that says the site is served over HTTPS;
  without includeSubDomains, since the lab may share a parent domain with other services.
- A header a route already set (the image route's nosniff) is kept, never doubled.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FIGURE_PAGES = re.compile(r"/studies/[^/]+/(results|report)/?")
HSTS = "max-age=31536000"


def policy(*, allow_eval: bool) -> str:
    """The Content-Security-Policy; `allow_eval` adds 'unsafe-eval' to script-src for Vega."""
    script = "'self' 'unsafe-eval'" if allow_eval else "'self'"
    return (
        f"default-src 'self'; script-src {script}; style-src 'self' 'unsafe-inline'; img-src 'self'; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, Referrer-Policy and (over HTTPS) HSTS to each HTTP response."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts
        self.strict = policy(allow_eval=False)
        self.figures = policy(allow_eval=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.figures if FIGURE_PAGES.fullmatch(scope["path"]) else self.strict

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
