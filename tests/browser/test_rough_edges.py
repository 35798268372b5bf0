"""Rough edges seen in screenshots, each measured in Chromium: intervals and pseudonyms on one line, progress
labels readable on the bar whether filled or not, model cards wide enough for their tables, and the Users
table's actions inside their rows."""

from __future__ import annotations

import pytest

from tests import factories
from tests.browser.signing import sign_in

pytestmark = pytest.mark.browser

# How many lines an element's text takes: an inline box counts its line boxes, a cell the height of its text.
LINES = """(el) => {
  const style = getComputedStyle(el);
  if (style.display === 'inline') return el.getClientRects().length;
  const line = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
  const text = document.createRange();
  text.selectNodeContents(el);
  return Math.round(text.getBoundingClientRect().height / line);
}"""

# The WCAG contrast of a label's text against every colour that lies behind it: its own background where
# that is opaque, otherwise the track and, where the filled part reaches under the label, the bar.
CONTRASTS = """(label) => {
  const rgba = (c) => { const m = c.match(/[\\d.]+/g).map(Number); return m.length === 3 ? [...m, 1] : m; };
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const opaque = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c[3] === 1) return c;
    }
    return [255, 255, 255, 1];
  };
  const ink = rgba(getComputedStyle(label).color);
  const own = rgba(getComputedStyle(label).backgroundColor);
  if (own[3] === 1) return [ratio(ink, own)];
  const track = label.parentElement;
  const behind = [opaque(track)];
  const box = label.getBoundingClientRect();
  for (const bar of track.children) {
    if (bar === label) continue;
    const b = bar.getBoundingClientRect();
    const across = b.left < box.right && b.right > box.left;
    if (b.width > 0 && across && b.top < box.bottom && b.bottom > box.top) behind.push(opaque(bar));
  }
  return behind.map((bg) => ratio(ink, bg));
}"""


def _page(browser, base: str, email: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, base, email)
    return page


def _inside(box: dict, outer: dict, slack: float = 0.5) -> bool:
    return (
        box["x"] >= outer["x"] - slack
        and box["y"] >= outer["y"] - slack
        and box["x"] + box["width"] <= outer["x"] + outer["width"] + slack
        and box["y"] + box["height"] <= outer["y"] + outer["height"] + slack
    )


def _lines(page, selector: str) -> list[tuple[str, int]]:
    return [(el.inner_text(), el.evaluate(LINES)) for el in page.locator(selector).all()]


def test_intervals_and_pseudonyms_do_not_wrap(session, store, live_server, browser, tmp_path):
    researcher = factories.user(session, "researcher", "res@test.org")
    readers = [factories.user(session, "reader", f"reader{i}@test.org") for i in range(3)]
    study = factories.launched_study(session, store, readers=readers, creator=researcher, n_cases=16)
    session.commit()
    for reader, skill in zip(readers, (0.7, 0.3, 0.0), strict=True):
        factories.answer_cases(session, study.id, reader, cases=12, skill=skill)

    page = _page(browser, live_server, researcher.email)
    page.goto(f"{live_server}/studies/{study.id}/results")
    intervals = _lines(page, "#reader-table .nowrap, #mrmc td.nowrap, #findings .nowrap, #timing .nowrap")
    pseudonyms = _lines(page, "#reader-table code, #pairs code")
    assert len(intervals) > 20 and len(pseudonyms) == 9, (len(intervals), len(pseudonyms))
    assert [x for x in intervals + pseudonyms if x[1] != 1] == []
    page.locator("#reader-table").screenshot(path=str(tmp_path.parent / "reader-table.png"))
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the results page is {overflow} px wider than the window"

    page.goto(f"{live_server}/studies/{study.id}")
    pseudonyms = _lines(page, "#progress-region code")
    assert len(pseudonyms) == 3 and [x for x in pseudonyms if x[1] != 1] == []
    page.context.close()


def test_progress_labels_are_readable_filled_or_not(session, store, live_server, browser):
    admin = factories.user(session, "admin", "admin@test.org")
    reader = factories.user(session, "reader", "reader@test.org")
    study = factories.launched_study(session, store, readers=[reader], creator=admin, n_cases=4)
    session.commit()
    factories.answer_cases(session, study.id, reader, cases=3, skill=0.5)
    from app.domain import runs

    made = []
    for progress in (0.0, 0.6, 1.0):
        run, _ = runs.create(
            session, "sample", {"model": "phantom-pggan-64", "n": 8}, actor_id=admin.id, request_key=None
        )
        runs.claim(session, run.id, run.attempt, worker="test")
        runs.beat(session, run.id, run.attempt, progress=progress, note="sampling")
        made.append(run)
    session.commit()

    page = _page(browser, live_server, admin.email)
    contrasts = {}
    for where in ("/runs", f"/runs/{made[1].id}", f"/runs/{made[2].id}", f"/studies/{study.id}"):
        page.goto(live_server + where)
        for i, label in enumerate(page.locator(".progress-label").all()):
            contrasts[f"{where} #{i} {label.inner_text()}"] = label.evaluate(CONTRASTS)
    page.context.close()

    page = _page(browser, live_server, reader.email)
    for where in ("/read", f"/read/{study.id}"):
        page.goto(live_server + where)
        contrasts[where] = page.locator(".progress-label").evaluate(CONTRASTS)
    page.goto(f"{live_server}/read/{study.id}/case")
    contrasts["case"] = page.locator(".reading-progress-label").evaluate(CONTRASTS)
    page.context.close()

    assert len(contrasts) >= 8, contrasts
    assert {k: v for k, v in contrasts.items() if min(v) < 4.5} == {}, contrasts


def test_model_cards_have_room_for_their_tables(session, live_server, browser, tmp_path):
    admin = factories.user(session, "admin", "admin@test.org")
    session.commit()
    page = _page(browser, live_server, admin.email)
    page.goto(live_server + "/models")
    main = page.evaluate(
        "() => { const m = document.querySelector('main'), s = getComputedStyle(m);"
        " return m.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }"
    )
    widths = [card.bounding_box()["width"] for card in page.locator("section.card.model").all()]
    assert len(widths) >= 2 and min(widths) >= 0.45 * main, (widths, main)
    # Row headings and every cell of a classifier's table (finding, AUROC with its interval, threshold) fit
    # on one line; a generator's free-text source may wrap.
    cells = _lines(page, "section.card.model th, section.card.model table:has(thead) td")
    page.screenshot(path=str(tmp_path.parent / "models.png"), full_page=True)
    assert len(cells) > 20 and [c for c in cells if c[1] > 1] == []
    page.context.close()


def test_user_actions_sit_inside_their_rows(session, live_server, browser, tmp_path):
    admin = factories.user(session, "admin", "admin@test.org")
    for i in range(3):
        factories.user(session, "reader", f"reader{i}@test.org")
    session.commit()
    other = _page(browser, live_server, "reader0@test.org")  # an open session, which the admin may end
    page = _page(browser, live_server, admin.email)
    page.goto(live_server + "/admin/users")
    rows = page.locator("table.table tbody tr").all()
    assert len(rows) == 4
    outside = []
    for row in rows:
        r = row.bounding_box()
        cell = row.locator("td.actions")
        c = cell.bounding_box()
        # The cell is one of the row's cells: it spans the row's height, so its border is the row's border.
        if abs(c["y"] - r["y"]) > 0.5 or abs(c["y"] + c["height"] - r["y"] - r["height"]) > 0.5:
            outside.append(("cell", c, r))
        checks = [(c, r)] + [(b.bounding_box(), c) for b in cell.locator("button").all()]
        for box, outer in checks:
            if not _inside(box, outer):
                outside.append((row.locator("td").first.inner_text(), box, outer))
    page.screenshot(path=str(tmp_path.parent / "users.png"), full_page=True)
    assert page.locator("td.actions button:has-text('Sign out everywhere')").count() == 1
    assert outside == []
    other.context.close()
    page.context.close()
