"""Security headers on every kind of response: a page, a fragment, a static file, an image, a download;
'unsafe-eval' only where Vega draws figures; HSTS only when the site says it is served over HTTPS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests import factories


@pytest.fixture
def study(session, store, people):
    """A launched study with some readings, so its results page draws figures."""
    readers = [people["reader"], people["reader2"]]
    s = factories.launched_study(session, store, readers=readers, creator=people["researcher"], n_cases=6)
    session.commit()
    for reader in readers:
        factories.answer_cases(session, s.id, reader, cases=6, skill=0.5)
    return s


def _directives(response) -> dict[str, str]:
    csp = response.headers["content-security-policy"]
    pairs = (part.strip().split(" ", 1) for part in csp.split(";"))
    return {name: value for name, value in pairs}


def _assert_common(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers
    d = _directives(response)
    assert d["default-src"] == "'self'" and d["img-src"] == "'self'" and d["connect-src"] == "'self'"
    assert d["frame-ancestors"] == "'none'" and d["object-src"] == "'none'" and d["base-uri"] == "'none'"
    assert d["form-action"] == "'self'"
    assert "'unsafe-inline'" not in d["script-src"]


def _assert_strict(response) -> None:
    _assert_common(response)
    assert _directives(response)["script-src"] == "'self'"


def test_pages_fragments_static_files_images_and_downloads_carry_the_headers(study, signed_in, session):
    from app.persistence.repositories import studies

    researcher = signed_in("researcher")
    pages = ("/login", "/studies", f"/studies/{study.id}")
    for path in pages + ("/static/css/app.css", "/static/js/actions.js"):
        r = researcher.get(path)
        assert r.status_code == 200, path
        _assert_strict(r)
    fragment = researcher.get(f"/studies/{study.id}/progress", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    _assert_strict(fragment)
    image = researcher.get(f"/img/{studies.cases(session, study.id)[0].opaque_id}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    _assert_strict(image)
    assert image.headers.get_list("x-content-type-options") == ["nosniff"]  # the route's own, not doubled
    for path in (f"/studies/{study.id}/export.csv", f"/studies/{study.id}/figures/forest.svg"):
        r = researcher.get(path)
        assert r.status_code == 200, path
        _assert_strict(r)
    # Errors too: a 404 page and a refused fragment.
    _assert_strict(researcher.get("/nowhere"))
    _assert_strict(signed_in("reader").get(f"/studies/{study.id}/progress", headers={"HX-Request": "true"}))


def test_only_the_figure_pages_may_eval(study, signed_in):
    researcher = signed_in("researcher")
    for path in (f"/studies/{study.id}/results", f"/studies/{study.id}/report"):
        r = researcher.get(path)
        assert r.status_code == 200 and "data-vega-spec" in r.text, path
        _assert_common(r)
        assert _directives(r)["script-src"] == "'self' 'unsafe-eval'"
    # No other template loads Vega: one that did would need its route in FIGURE_PAGES.
    templates = Path(__file__).resolve().parents[2] / "templates"
    loaders = {
        p.relative_to(templates).as_posix()
        for p in templates.rglob("*.html")
        if "figure_scripts()" in p.read_text()
    }
    assert loaders == {"components/stats.html", "pages/results/results.html", "pages/results/report.html"}


def test_no_inline_script_in_the_pages(study, signed_in, make_client):
    """None of what the policy blocks is in the pages: on*= handlers, javascript: URLs, inline scripts."""
    admin = signed_in("admin")
    page = admin.get("/admin/users")
    form = {"csrf_token": factories.csrf_of(page.text), "name": "N", "email": "n@test.org", "role": "reader"}
    invited = admin.post("/admin/users", data=form)
    assert "data-select-on-click" in invited.text
    researcher = signed_in("researcher")
    pages = [make_client().get("/login").text, invited.text]
    pages += [researcher.get(f"/studies/{study.id}{tail}").text for tail in ("", "/results", "/report")]
    assert 'data-action="print"' in pages[-1]
    for html in pages:
        handler = re.search(r"<[^>]*\son[a-z]+\s*=[^>]*>", html)
        assert handler is None, handler.group(0)
        assert "javascript:" not in html.lower()
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), "an inline <script> element"


def test_hsts_only_with_secure_cookies(db_url, monkeypatch):
    secure = factories.app_with_env(monkeypatch, SECURE_COOKIES="true")
    with TestClient(secure, base_url="https://testserver") as client:
        for path in ("/login", "/static/css/app.css"):
            r = client.get(path)
            assert r.headers["strict-transport-security"] == "max-age=31536000", path
            assert r.headers["x-content-type-options"] == "nosniff"
    monkeypatch.delenv("SECURE_COOKIES")
    with TestClient(factories.app_with_env(monkeypatch)) as client:
        assert "strict-transport-security" not in client.get("/login").headers


def test_an_unhandled_error_gets_the_headers_and_a_plain_page(db_url):
    from app.web.main import create_app

    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/boom")
        assert page.status_code == 500 and "has been logged" in page.text and "a bug" not in page.text
        _assert_strict(page)
        fragment = client.get("/boom", headers={"HX-Request": "true"})
        assert fragment.status_code == 500 and fragment.headers["hx-retarget"] == "#flash"
        _assert_strict(fragment)
