"""The reading page records how each case was viewed, lets a reader flag a case unreadable instead of
guessing, and warns a reader whose window is below the study's minimum before the first case."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.persistence.models import Reading
from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


def test_a_flag_and_an_answer_carry_the_viewing_conditions(session, store, live_server, browser):
    researcher = factories.user(session, "researcher", "res@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(session, store, readers=[reader], creator=researcher, n_cases=4)
    session.commit()

    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, live_server, reader.email)
    page.goto(f"{live_server}/read/{study.id}/case")
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")

    # N goes to the reasons; choosing one disables the answer, R does nothing then, and Enter on the
    # reasons sends the flag without a verdict.
    page.keyboard.press("n")
    assert page.evaluate("() => document.activeElement.name") == "unreadable_reason"
    page.select_option("select[name=unreadable_reason]", "display")
    assert page.locator("input[name=verdict][value=real]").is_disabled()
    page.keyboard.press("Escape")  # leaves the reasons
    page.keyboard.press("r")
    assert not page.locator("input[name=verdict][value=real]").is_checked()
    first = page.locator("#case-region").get_attribute("data-case-id")
    page.focus("select[name=unreadable_reason]")
    page.keyboard.press("Enter")
    page.wait_for_function("(id) => document.querySelector('#case-region').dataset.caseId !== id", arg=first)
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")

    # Choosing "I can read it" again gives the answer back.
    page.select_option("select[name=unreadable_reason]", "quality")
    page.select_option("select[name=unreadable_reason]", "")
    assert not page.locator("input[name=verdict][value=real]").is_disabled()
    page.locator("body").focus()
    page.keyboard.press("=")  # 1:1: a 64 px film at 1:1 is reached at fit already; this keeps it there
    for key in ("s", "4", "Enter"):
        page.keyboard.press(key)
    page.wait_for_function("() => !document.querySelector('#reading-form.htmx-request')")
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")
    context.close()

    session.expire_all()
    flag, answer = session.scalars(select(Reading).order_by(Reading.position)).all()
    assert (flag.unreadable_reason, flag.verdict, flag.confidence) == ("display", None, None)
    assert (answer.unreadable_reason, answer.verdict, answer.confidence) == (None, "synthetic", 4)
    for r in (flag, answer):
        assert (r.window_w, r.window_h, r.device_pixel_ratio) == (1280, 800, 2.0)
        assert r.screen_w >= 1280 and r.screen_h >= 800
        assert r.zoom_at_submit > 0 and r.one_to_one_reached is True and r.one_to_one_ms >= 0
        assert "Chrome" in r.browser
    assert answer.zoom_at_submit == pytest.approx(1.0)


def test_a_small_window_is_told_before_the_first_case(session, store, live_server, browser):
    researcher = factories.user(session, "researcher", "res@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(
        session, store, readers=[reader], creator=researcher, min_window_w=1600, min_window_h=900
    )
    session.commit()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, live_server, reader.email)
    page.goto(f"{live_server}/read/{study.id}")
    warning = page.locator("[data-min-window-w]")
    warning.wait_for(state="visible")
    assert "1600 × 900" in warning.inner_text() and "1280 × 800" in warning.inner_text()
    page.set_viewport_size({"width": 1700, "height": 1000})
    warning.wait_for(state="hidden")
    context.close()
