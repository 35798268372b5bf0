"""Every kind of page passes axe-core (vendored under vendor/axe-core) without a serious or critical
violation, colour contrast included: the reader's pages, the researcher's and the admin's.

The data is built once and three people visit the pages in sequence in one test, so that it stays fast.
The app's CSP allows no injected script; these contexts bypass it to add axe, and only these.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def _violations(page) -> list[dict]:
    """axe's serious and critical violations on the page as it stands."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(v => ({"
        "id: v.id, impact: v.impact, help: v.help,"
        "targets: v.nodes.map(n => n.target.join(' ') + '  ' + n.html.slice(0, 160)"
        " + (n.failureSummary ? '\\n      ' + n.failureSummary.replaceAll('\\n', ' ') : ''))}))"
    )
    return [v for v in found if v["impact"] in BLOCKING]


class Audit:
    """Collects each page's blocking violations under the page's name."""

    def __init__(self) -> None:
        self.failures: dict[str, list[dict]] = {}
        self.seen: list[str] = []

    def check(self, name: str, page) -> None:
        self.seen.append(name)
        if found := _violations(page):
            self.failures[name] = found

    def report(self) -> str:
        lines = []
        for name, found in self.failures.items():
            for v in found:
                lines.append(f"{name}: {v['id']} ({v['impact']}) {v['help']}")
                lines.extend(f"    {t}" for t in v["targets"][:8])
        return "\n".join(lines)


def _context(browser):
    return browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)


def test_every_page_passes_axe(session, store, live_server, browser):
    admin = factories.user(session, "admin", "admin@test.org")
    readers = [factories.user(session, "reader", f"reader{i}@test.org") for i in range(3)]
    real = factories.phantom_set(session, store, name="real", kind="real", n=12, seed=0)
    synthetic = factories.phantom_set(session, store, name="synthetic", kind="synthetic", n=12, seed=1)
    study = factories.launched_study(
        session, store, readers=readers[:2], creator=admin, n_cases=8, real=real, synthetic=synthetic
    )
    practice = factories.launched_study(
        session,
        store,
        readers=[readers[2]],
        creator=admin,
        n_cases=2,
        practice=1,
        real=real,
        synthetic=synthetic,
    )
    session.commit()
    for reader, skill in zip(readers[:2], (0.6, 0.2), strict=True):
        factories.answer_cases(session, study.id, reader, cases=8, skill=skill)
    from app.domain import runs

    run, _ = runs.create(
        session, "sample", {"model": "phantom-pggan-64", "n": 8}, actor_id=admin.id, request_key=None
    )
    runs.claim(session, run.id, run.attempt, worker="test")
    runs.beat(session, run.id, run.attempt, progress=0.6, note="sampling")
    session.commit()

    audit = Audit()
    base = live_server

    # The reader of the practice study: login, intake, their studies, instructions, a case, the feedback.
    context = _context(browser)
    page = context.new_page()
    page.goto(base + "/login")
    audit.check("login", page)
    sign_in(page, base, readers[2].email)
    page.goto(base + "/intake")
    audit.check("intake", page)
    page.goto(base + "/read")
    audit.check("my studies", page)
    page.goto(f"{base}/read/{practice.id}")
    audit.check("instructions", page)
    page.goto(f"{base}/read/{practice.id}/case")
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")
    audit.check("case", page)
    for key in ("r", "3", "Enter"):
        page.keyboard.press(key)
    page.wait_for_selector("#case-region.feedback [data-next]")
    audit.check("practice feedback", page)
    context.close()

    # A reader who has read everything.
    context = _context(browser)
    page = context.new_page()
    sign_in(page, base, readers[0].email)
    page.goto(f"{base}/read/{study.id}/done")
    audit.check("done", page)
    context.close()

    # The admin: studies, results, runs, models, image sets, users.
    context = _context(browser)
    page = context.new_page()
    sign_in(page, base, admin.email)
    pages = [
        ("studies list", "/studies"),
        ("study detail", f"/studies/{study.id}"),
        ("results", f"/studies/{study.id}/results"),
        ("runs list", "/runs"),
        ("run detail", f"/runs/{run.id}"),
        ("new run form", "/runs/new?kind=sample"),
        ("models list", "/models"),
        ("model detail", "/models/phantom-pggan-64"),
        ("image sets list", "/image-sets"),
        ("image set detail", f"/image-sets/{real.id}"),
        ("users", "/admin/users"),
    ]
    for name, path in pages:
        page.goto(base + path)
        if name == "results":
            page.wait_for_selector("#fig-forest svg")
            page.wait_for_selector("#fig-roc svg")
        audit.check(name, page)
    context.close()

    assert len(audit.seen) == 18, audit.seen
    assert not audit.failures, "axe found serious or critical violations:\n" + audit.report()
