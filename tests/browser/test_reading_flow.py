"""A reader reads with the keyboard only, reloads and resumes, finishes; a researcher downloads the CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser


def _label(page) -> str:
    return page.locator(".reading-progress-label").inner_text()


def _case_id(page) -> str:
    return page.locator("#case-region").get_attribute("data-case-id")


def test_keyboard_reading_resume_and_export(session, store, live_server, browser, tmp_path):
    researcher = factories.user(session, "researcher", "res@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(
        session, store, readers=[reader], creator=researcher, n_cases=3, ask_findings=True
    )
    session.commit()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_server, reader.email)
    page.goto(f"{live_server}/read/{study.id}")
    page.keyboard.press("Tab")  # the start link has focus via autofocus; Enter follows it
    page.goto(f"{live_server}/read/{study.id}/case")
    page.wait_for_function("() => window.CxrViewer !== undefined")
    assert _label(page) == "Case 1 of 3"
    first = _case_id(page)

    # Keyboard only: R (real), 4 (confidence), A (first finding), Enter.
    page.keyboard.press("r")
    page.keyboard.press("4")
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    page.wait_for_function("(id) => document.querySelector('#case-region').dataset.caseId !== id", arg=first)
    assert _label(page) == "Case 2 of 3"
    second = _case_id(page)

    # Back does not return to the answered case; a reload resumes at the current one.
    page.go_back()
    page.wait_for_timeout(300)
    assert "/read/" in page.url and _case_id(page) == second
    page.reload()
    page.wait_for_load_state("networkidle")
    assert _label(page) == "Case 2 of 3" and _case_id(page) == second

    page.keyboard.press("s")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_function("(id) => document.querySelector('#case-region').dataset.caseId !== id", arg=second)
    assert _label(page) == "Case 3 of 3"
    third = _case_id(page)
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")
    page.keyboard.press("Enter")  # without a verdict nothing is sent, and the reader is told why
    page.wait_for_function("() => document.querySelector('.form-error').textContent.trim() !== ''")
    assert _case_id(page) == third
    page.keyboard.press("s")
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/read/{study.id}/done$"))
    assert "Thank you" in page.content()
    context.close()

    staff = browser.new_context(accept_downloads=True)
    page = staff.new_page()
    sign_in(page, live_server, researcher.email)
    page.goto(f"{live_server}/studies/{study.id}/results")
    assert "Pooled" in page.content()
    with page.expect_download() as info:
        page.click("text=Export readings (CSV)")
    path = tmp_path / "export.csv"
    info.value.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    staff.close()
    # The reader saw ids of their own; the export keys the same cases by their study-level ids.
    from app.domain.readings import case_by_opaque

    seen = [case_by_opaque(session, served).opaque_id for served in (first, second, third)]
    assert [r["case_id"] for r in sorted(rows, key=lambda r: int(r["position"]))] == seen
    assert not {first, second, third} & set(seen)
    assert [r["verdict"] for r in sorted(rows, key=lambda r: int(r["position"]))] == [
        "real",
        "synthetic",
        "synthetic",
    ]
    assert {r["reader_id"] for r in rows} == {reader.pseudonym}
    assert rows[0]["confidence"] in ("4", "2", "5")


def test_server_errors_reach_the_reader(session, store, live_server, browser):
    from app.domain import studies

    researcher = factories.user(session, "researcher", "res@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(session, store, readers=[reader], creator=researcher, n_cases=2)
    session.commit()
    page = browser.new_page()
    sign_in(page, live_server, reader.email)
    page.goto(f"{live_server}/read/{study.id}/case")
    page.wait_for_function("() => window.CxrViewer !== undefined")
    studies.close(session, study.id, actor_id=researcher.id)  # the study closes while the reader reads
    session.commit()
    page.keyboard.press("r")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#flash').textContent.includes('closed')")
    page.close()
