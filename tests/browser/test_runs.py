"""An admin starts a sampling run in the browser, watches it reach 100 % and finds the new image set."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.signing import sign_in
from tests.waiting import patiently

pytestmark = pytest.mark.browser


def test_admin_samples_a_model_and_watches_progress(session, live_server, browser, workers, tmp_path):
    admin = factories.user(session, "admin", "admin@test.org")
    session.commit()
    workers.start()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, admin.email)

    page.click("nav >> text=Models")
    page.click("text=Sample >> nth=0")  # the bundled demo generator's card
    page.fill("input[name=n]", "48")
    page.fill("input[name=batch]", "4")
    page.fill("input[name=set_name]", "Sampled in the browser")
    page.click("button:has-text('Start')")
    page.wait_for_url("**/runs/*")

    # The live region polls itself; the bar passes through intermediate values and ends at 100 %.
    bar = page.locator("#run-live [role=progressbar]")
    status = "() => document.querySelector('#run-live .tag').textContent.trim()"
    patiently(
        lambda: page.evaluate(status) == "succeeded",
        signs=lambda: (page.evaluate(status), bar.get_attribute("aria-valuenow"), int(workers.cpu_seconds())),
        what="the run page's live region",
        explain=workers.logs,
    )
    assert bar.get_attribute("aria-valuenow") == "100.0"
    assert page.locator("#run-live .progress-label").inner_text() == "100.0 %"
    page.screenshot(path=str(tmp_path.parent / "run.png"), full_page=True)

    page.click("#run-live a:has-text('Sampled in the browser')")
    page.wait_for_url("**/image-sets/*")
    assert "48 images" in page.locator("main").inner_text()
    assert page.locator(".grid img").count() > 0
    context.close()
