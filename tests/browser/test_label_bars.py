"""An image set's label chart draws bars across the card, the most frequent label's bar as wide as the room
left by its name and count (it was a 2–6 px tick: the bar's cell had no width)."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


def test_the_label_bars_fill_their_card(session, store, live_server, browser):
    admin = factories.user(session, "admin", "admin@test.org")
    images = factories.phantom_set(session, store, name="labelled", kind="real", n=24, size=32)
    session.commit()

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, admin.email)
    page.goto(f"{live_server}/image-sets/{images.id}")
    table = page.locator("table.bars").bounding_box()
    widths = [b.bounding_box()["width"] for b in page.locator("table.bars .bar").all()]
    assert widths and max(widths) > 0.4 * table["width"], (max(widths, default=0), table["width"])
    context.close()
