"""Browser fixtures: the app served by a real uvicorn process, and Debian's Chromium through Playwright.

When a browser test fails, every page it left open is photographed into test-results/screenshots/ (the
path is printed with the failure), so the state the assertion saw can be looked at, not only read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, serving, uvicorn_command

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def _server(_database: str) -> Iterator[str]:
    """One uvicorn subprocess for the run: the app keeps nothing between requests that a test could see
    (sessions, throttles and tokens live in the database), so each test only needs the emptied database."""
    port = free_port()
    with serving(uvicorn_command(port), port) as (base, _proc):
        yield base


@pytest.fixture
def live_server(db_url: str, _server: str) -> str:
    """The app served over HTTP on the test database, emptied for this test."""
    return _server


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the run."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(autouse=True)
def _close_pages(request: pytest.FixtureRequest) -> Iterator[None]:
    """Close what a browser test left open (after its screenshots): a page that polls the shared server
    would otherwise keep polling it for the rest of the run."""
    yield
    browser = request.node.funcargs.get("browser")
    for context in list(browser.contexts) if browser is not None else []:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach screenshots of the open pages to a failed browser test's report."""
    outcome = yield
    report = outcome.get_result()
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.when != "call" or not report.failed or browser is None:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    pages = [page for context in browser.contexts for page in context.pages if not page.is_closed()]
    for i, page in enumerate(pages):
        path = SCREENSHOTS / f"{item.name[:80]}-{i}.png"
        try:
            page.screenshot(path=str(path), full_page=True, timeout=10_000)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            saved.append(f"{page.url}: no screenshot ({exc.__class__.__name__})")
            continue
        saved.append(f"{page.url}: {path}")
    if saved:
        report.sections.append(("screenshots", "\n".join(saved)))
