"""After a practice case's feedback, "Next" shows the next case without a frame of the feedback layout:
htmx settles the old element's attributes onto the new one, and the reading swaps settle at once."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

# Counts the frames painted while the case region still wears the feedback layout around a reading form.
WATCH_FRAMES = """() => {
  window.flashFrames = 0;
  const tick = () => {
    if (document.querySelector("#case-region.feedback #reading-form")) window.flashFrames += 1;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def test_next_after_practice_feedback_never_paints_the_feedback_layout(session, store, live_server, browser):
    researcher = factories.user(session, "researcher", "res@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(
        session, store, readers=[reader], creator=researcher, n_cases=4, practice=4
    )
    session.commit()

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, reader.email)
    page.goto(f"{live_server}/read/{study.id}/case")
    page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")
    page.evaluate(WATCH_FRAMES)
    for _ in range(4):  # every practice case, then the first study case
        shown = page.locator("#case-region").get_attribute("data-case-id")
        for key in ("r", "3", "Enter"):
            page.keyboard.press(key)
        page.wait_for_selector("#case-region.feedback [data-next]")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(id) => { const r = document.querySelector('#case-region');"
            " return r.dataset.caseId && r.dataset.caseId !== id && !r.classList.contains('feedback'); }",
            arg=shown,
        )
        page.wait_for_selector("#case-region .viewer[data-viewer-state=ready]")
    assert page.evaluate("() => window.flashFrames") == 0
    context.close()
