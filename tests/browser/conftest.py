"""Browser fixtures: the app served by a real uvicorn process, and Debian's Chromium through Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, serving, uvicorn_command

CHROMIUM = Path("/usr/bin/chromium")
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
