"""A researcher reads a study's results in Chromium: the headline MRMC sentence, the AUC forest plot, the
reader table and the agreement figures with their n, all inside the page's width."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


def _signed_in(browser, base: str, user):
    """A new page signed in as `user`."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, base, user.email)
    return page


def test_results_page_shows_the_analysis(session, store, live_server, browser, tmp_path):
    researcher = factories.user(session, "researcher", "res@test.org")
    readers = [factories.user(session, "reader", f"reader{i}@test.org") for i in range(3)]
    real = factories.phantom_set(session, store, name="real", kind="real", n=12, seed=0)
    synthetic = factories.phantom_set(session, store, name="synthetic", kind="synthetic", n=12, seed=1)
    study = factories.launched_study(
        session, store, readers=readers, creator=researcher, n_cases=16, real=real, synthetic=synthetic
    )
    session.commit()
    for reader, cases, skill in zip(readers, (16, 16, 9), (0.7, 0.3, 0.0), strict=True):
        factories.answer_cases(session, study.id, reader, cases=cases, skill=skill)

    page = _signed_in(browser, live_server, researcher)
    page.goto(f"{live_server}/studies/{study.id}/results")

    headline = page.locator("#mrmc-summary .headline").inner_text()
    assert headline.startswith("Readers' mean AUC") and "95 % CI" in headline
    # The vendored vega-embed draws each figure; the forest has a point per reader and the mean, twice.
    page.wait_for_selector("#fig-forest svg .mark-symbol path")
    assert page.locator("#fig-forest svg .mark-symbol path").count() == 8
    page.wait_for_selector("#fig-roc svg .mark-line path")
    for name in ("calibration", "position"):
        page.wait_for_selector(f"#fig-{name} svg")
    assert "could not be drawn" not in page.locator("main").inner_text()
    assert page.locator("#reader-table tbody tr").count() == 3
    assert page.locator("#mrmc tbody tr").count() == 9  # three figures of merit x three analyses
    agreement = page.locator("#agreement").inner_text()
    assert "read by all 3 readers" in agreement and "cases read by two or more readers" in agreement
    assert page.locator("#pairs tbody tr").count() == 3
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=str(tmp_path.parent / "results.png"), full_page=True)
    assert overflow <= 0, f"the page is {overflow} px wider than the window"

    page.click("text=Printable report")
    report = page.context.wait_for_event("page") if page.context.pages[-1] is page else page.context.pages[-1]
    report.wait_for_load_state()
    assert "Methods" in report.locator("#methods").inner_text()
    assert report.locator("#design").inner_text().startswith("Design")
    report.emulate_media(media="print")
    assert not report.locator("header.topbar").is_visible()  # the printout has no navigation
    report.screenshot(path=str(tmp_path.parent / "report.png"), full_page=True)


def test_planning_follows_the_study_form(session, live_server, browser, tmp_path):
    researcher = factories.user(session, "researcher", "res@test.org")
    for i in range(3):
        factories.user(session, "reader", f"reader{i}@test.org")
    session.commit()
    page = _signed_in(browser, live_server, researcher)
    page.goto(live_server + "/studies/new")
    before = page.locator("#plan-power").inner_text()
    for box in page.locator("input[name=reader_ids]").all():
        box.check()
    page.fill("input[name=n_cases]", "300")
    page.locator("input[name=n_cases]").dispatch_event("change")
    # Each change re-renders the region; wait for the one that saw all three readers and 300 cases.
    page.wait_for_function("() => document.querySelector('#plan').textContent.includes('3 readers and 300')")
    assert float(page.locator("#plan-power").inner_text().rstrip(" %")) > float(before.rstrip(" %"))
    page.locator("#plan").screenshot(path=str(tmp_path.parent / "plan.png"))
