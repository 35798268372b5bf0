"""The next case's image is fetched while the reader looks at the current one, so the swap after Enter
needs no image request; only the next image, and none past the last case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

# Records, in the page, the time from each Enter to the next case's image drawn (performance.now()).
WATCH_SWAPS = (Path(__file__).parent / "swap_watch.js").read_text()


def test_the_swap_needs_no_image_request(session, store, live_server, browser):
    researcher = factories.user(session, "researcher", "res@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(session, store, readers=[reader], creator=researcher, n_cases=5)
    session.commit()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    images: list[str] = []
    page.on("request", lambda r: images.append(r.url.rsplit("/", 1)[1]) if "/img/" in r.url else None)
    sign_in(page, live_server, reader.email)
    page.goto(f"{live_server}/read/{study.id}/case")
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")
    page.evaluate(WATCH_SWAPS)

    shown = [page.locator("#case-region").get_attribute("data-case-id")]
    for _ in range(4):
        ahead = page.locator("#viewer").get_attribute("data-next-src").rsplit("/", 1)[1]
        page.wait_for_function(
            "(id) => performance.getEntriesByName(location.origin + '/img/' + id).length", arg=ahead
        )
        before = len(images)
        for key in ("r", "3", "Enter"):
            page.keyboard.press(key)
        page.wait_for_function("(n) => window.swaps.length === n", arg=len(shown))
        shown.append(page.locator("#case-region").get_attribute("data-case-id"))
        assert shown[-1] == ahead  # the image fetched ahead was the one shown next
        assert shown[-1] not in images[before:]  # and the swap asked for no image
    assert page.locator("#viewer").get_attribute("data-next-src") is None  # the last case: nothing ahead
    assert images == shown  # each image fetched once, nothing beyond the study's cases
    swaps = page.evaluate("() => window.swaps")
    print(f"\nEnter -> next image drawn, ms: {', '.join(f'{t:.1f}' for t in swaps)}")
    context.close()
