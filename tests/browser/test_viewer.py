"""Browser tests of the reading page's viewer (viewer.js) and keyboard answering (readings.js)."""

from __future__ import annotations

import functools
import http.server
import posixpath
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Debian's Chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
HARNESS = "/tests/browser/fixtures/readings.html"
SERVER_LIFETIME_S = 900  # the test server shuts itself down after this even if teardown never runs

# The case that the intercepted POST returns: no findings, no free text, no giveaway click.
NEXT_CASE = """<div id="case-region" data-case-id="Case2">
  <div class="reading-progress"><div class="reading-progress-bar" style="width: 50%"></div>
    <span class="reading-progress-label">Case 6 of 12</span></div>
  <div class="viewer" id="viewer" data-src="/_test/case2.png" data-click="off">
    <canvas class="viewer-canvas"></canvas>
    <div class="viewer-toolbar"><button type="button" data-viewer="fit">Fit</button></div>
    <output class="viewer-readout"></output></div>
  <form id="reading-form" hx-post="/read/7/case" hx-target="#case-region" hx-swap="outerHTML"
        hx-disabled-elt="find button[type=submit]">
    <input type="hidden" name="case_id" value="Case2"><input type="hidden" name="client_token" value="t2">
    <input type="hidden" name="active_ms" value="0">
    <input type="hidden" name="click_x" value=""><input type="hidden" name="click_y" value="">
    <fieldset class="verdict"><legend>Verdict</legend>
      <label><input type="radio" name="verdict" value="real" data-key="r"> R</label>
      <label><input type="radio" name="verdict" value="synthetic" data-key="s"> S</label></fieldset>
    <fieldset class="confidence"><legend>Confidence</legend>
      <label><input type="radio" name="confidence" value="3" data-key="3"> 3</label>
      <label><input type="radio" name="confidence" value="5" data-key="5"> 5</label></fieldset>
    <p class="form-error" role="alert"></p><button type="submit">Submit</button></form>
  <dialog id="help-dialog">Keys <button type="button" data-close>Close</button></dialog>
</div>"""
FEEDBACK = """<div id="case-region" class="feedback"><p>That one was real.</p>
  <button type="button" data-next hx-get="/read/7/case" hx-target="#case-region" hx-swap="outerHTML">
  Next</button></div>"""


SMOOTHING = "() => document.querySelector('#case-region canvas').getContext('2d').imageSmoothingEnabled"


def case1_value(ix: float) -> int:
    """Grey value of case1.png at image column ix: a horizontal ramp, 4 columns per level."""
    return int(ix) // 4


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the repository, and /_test/<name> from the test's image folder."""

    image_dir = ""

    def translate_path(self, path: str) -> str:
        clean = urllib.parse.urlsplit(path).path
        if clean.startswith("/_test/"):
            return str(Path(self.image_dir) / posixpath.basename(clean))
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    images = tmp_path_factory.mktemp("images")
    # case1: (768, 1024) uint8, value = column // 4; case2: (512, 512), a falling ramp.
    ramp1 = np.tile((np.arange(1024) // 4).astype(np.uint8), (768, 1))
    Image.fromarray(ramp1, mode="L").save(images / "case1.png")
    ramp2 = np.tile((255 - np.arange(512) // 2).astype(np.uint8), (512, 1))
    Image.fromarray(ramp2, mode="L").save(images / "case2.png")
    handler = type("Handler", (_Handler,), {"image_dir": str(images)})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(REPO))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    watchdog = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    watchdog.cancel()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class Reading:
    """One harness page with its intercepted case endpoint."""

    def __init__(self, browser: Any, base_url: str, dpr: float = 1.0) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=dpr)
        self.page = self.context.new_page()
        self.sent: list[tuple[str, dict[str, list[str]]]] = []
        self.replies = {"POST": NEXT_CASE, "GET": NEXT_CASE}
        self.page.route("**/read/7/case", self._reply)
        self.page.goto(base_url + HARNESS)
        self.wait_ready()

    def _reply(self, route: Any) -> None:
        req = route.request
        self.sent.append((req.method, urllib.parse.parse_qs(req.post_data or "", keep_blank_values=True)))
        route.fulfill(status=200, content_type="text/html", body=self.replies[req.method])

    def wait_ready(self, case_id: str | None = None) -> None:
        want = f"&& document.getElementById('case-region').dataset.caseId === '{case_id}'" if case_id else ""
        self.page.wait_for_function(
            f"() => document.querySelector('#case-region .viewer')?.dataset.viewerState === 'ready' {want}"
        )
        self.frame()

    def frame(self) -> None:
        """Let pending requestAnimationFrame renders run."""
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def call(self, method: str) -> Any:
        """Call a method on the current case's viewer, then wait for its render."""
        out = self.page.evaluate(
            f"() => CxrViewer.get(document.querySelector('#case-region .viewer')).{method}"
        )
        self.frame()
        return out

    def state(self) -> dict[str, Any]:
        return self.call("state()")

    def canvas(self) -> dict[str, float]:
        return self.page.evaluate(
            """() => { const c = document.querySelector('#case-region canvas');
              const r = c.getBoundingClientRect();
              return {w: c.width, h: c.height, cssW: c.clientWidth, left: r.left, top: r.top}; }"""
        )

    def pixels(self, x: int, y: int, n: int = 1) -> list[list[int]]:
        """RGBA of n device pixels of the canvas from (x, y) rightwards."""
        flat = self.page.evaluate(
            """([x, y, n]) => Array.from(document.querySelector('#case-region canvas')
                 .getContext('2d').getImageData(x, y, n, 1).data)""",
            [x, y, n],
        )
        return [flat[i : i + 4] for i in range(0, len(flat), 4)]

    def field(self, name: str) -> str:
        return self.page.evaluate(f"() => document.querySelector('#reading-form [name={name}]').value")


@pytest.fixture()
def reading(browser: Any, base_url: str) -> Iterator[Reading]:
    r = Reading(browser, base_url)
    yield r
    r.context.close()


def image_x(st: dict[str, Any], px: float) -> float:
    return (px + 0.5 - st["panX"]) / st["zoom"]


def test_identity_window_reproduces_the_gradient_at_fit(reading: Reading) -> None:
    st, cv = reading.state(), reading.canvas()
    assert (st["width"], st["level"], st["invert"]) == (256, 128, False)
    assert st["zoom"] == pytest.approx(min(cv["w"] / 1024, cv["h"] / 768), rel=1e-3)  # fitted
    y = int(cv["h"] // 2)
    for px in range(int(cv["w"] // 2) - 300, int(cv["w"] // 2) + 301, 100):
        grey = reading.pixels(px, y)[0]
        assert grey[0] == grey[1] == grey[2]
        assert abs(grey[0] - case1_value(image_x(st, px))) <= 2
    assert "W 256" in reading.page.inner_text(".viewer-readout")
    assert reading.page.evaluate(SMOOTHING) is True  # minified (zoom < 1): smoothed


def test_dark_range_preset_invert_and_reset(reading: Reading) -> None:
    cv = reading.canvas()
    px, py = int(cv["w"] // 2 - 200), int(cv["h"] // 2)
    reading.page.click("[data-preset=dark]")
    reading.frame()
    st = reading.state()
    assert (st["width"], st["level"]) == (160, 90)
    v = case1_value(image_x(st, px))
    lung = reading.pixels(px, py)[0][0]
    assert abs(lung - np.clip(((v - 89.5) / 159 + 0.5) * 255, 0, 255)) <= 1  # DICOM linear VOI
    assert abs(lung - v) > 10  # the window really changed the picture
    reading.page.keyboard.press("i")
    reading.frame()
    assert reading.state()["invert"] is True
    assert abs(reading.pixels(px, py)[0][0] - (255 - lung)) <= 1
    assert "inverted" in reading.page.inner_text(".viewer-readout")
    reading.page.keyboard.press("0")
    reading.frame()
    st = reading.state()
    assert (st["width"], st["level"], st["invert"]) == (256, 128, False)


def test_one_to_one_shows_one_image_pixel_per_device_pixel(browser: Any, base_url: str) -> None:
    r = Reading(browser, base_url, dpr=2.0)
    try:
        cv = r.canvas()
        assert cv["w"] == round(cv["cssW"] * 2)  # backing store sized by devicePixelRatio
        assert r.state()["zoom"] > 1 and r.page.evaluate(SMOOTHING) is True  # magnified: interpolated
        before = r.state()
        centre = image_x(before, cv["w"] / 2)
        r.page.keyboard.press("=")
        r.frame()
        st = r.state()
        assert st["zoom"] == 1
        assert image_x(st, cv["w"] / 2) == pytest.approx(centre, abs=0.5)  # same view centre
        x0, y = int(cv["w"] // 2) - 16, int(cv["h"] // 2)
        row = [p[0] for p in r.pixels(x0, y, 32)]
        assert row == [case1_value(image_x(st, x0 + i)) for i in range(32)]  # sharp, unsmoothed
        r.page.keyboard.press("f")
        r.frame()
        assert r.state()["zoom"] == pytest.approx(before["zoom"])
    finally:
        r.context.close()


def test_wheel_zooms_about_the_cursor(reading: Reading) -> None:
    cv, st = reading.canvas(), reading.state()
    mx, my = cv["left"] + 200, cv["top"] + 300
    anchor = image_x(st, mx - cv["left"])
    reading.page.mouse.move(mx, my)
    reading.page.mouse.wheel(0, -300)
    reading.page.wait_for_function("() => CxrViewer.get(document.querySelector('.viewer')).state().zoom > 1")
    after = reading.state()
    assert after["zoom"] > st["zoom"]
    assert image_x(after, mx - cv["left"]) == pytest.approx(anchor, abs=1.0)


def test_resize_keeps_the_view(reading: Reading) -> None:
    reading.page.keyboard.press("=")
    reading.frame()
    before, cv = reading.state(), reading.canvas()
    centre = (image_x(before, cv["w"] / 2), image_x({**before, "panX": before["panY"]}, cv["h"] / 2))
    reading.page.set_viewport_size({"width": 1100, "height": 700})
    reading.page.wait_for_function(f"() => document.querySelector('#case-region canvas').width < {cv['w']}")
    reading.frame()
    after, cv = reading.state(), reading.canvas()
    assert after["zoom"] == 1
    assert image_x(after, cv["w"] / 2) == pytest.approx(centre[0], abs=0.5)
    assert image_x({**after, "panX": after["panY"]}, cv["h"] / 2) == pytest.approx(centre[1], abs=0.5)


def test_drags_window_and_pan_without_marking(reading: Reading) -> None:
    cv, st = reading.canvas(), reading.state()
    cx, cy = cv["left"] + 300, cv["top"] + 300
    mouse = reading.page.mouse
    mouse.move(cx, cy)
    mouse.down()
    mouse.move(cx + 80, cy + 40, steps=8)
    mouse.up()
    reading.frame()
    wl = reading.state()
    assert wl["width"] == pytest.approx(st["width"] + 40) and wl["level"] == pytest.approx(st["level"] + 20)
    assert reading.field("click_x") == "" and wl["panX"] == st["panX"]
    reading.page.keyboard.down("Shift")
    mouse.down()
    mouse.move(cx + 30, cy - 20, steps=25)  # steps under the click slop must still count
    mouse.up()
    reading.page.keyboard.up("Shift")
    reading.frame()
    panned = reading.state()
    assert panned["panX"] == pytest.approx(wl["panX"] - 50, abs=1)
    assert panned["panY"] == pytest.approx(wl["panY"] - 60, abs=1)
    assert panned["width"] == wl["width"] and reading.field("click_x") == ""


def test_still_click_marks_the_giveaway_point(reading: Reading) -> None:
    cv, st = reading.canvas(), reading.state()
    dx, dy = 250.0, 180.0  # CSS px into the canvas (DPR 1)
    reading.page.mouse.click(cv["left"] + dx, cv["top"] + dy)
    reading.frame()
    fx, fy = float(reading.field("click_x")), float(reading.field("click_y"))
    assert fx == pytest.approx((dx - st["panX"]) / st["zoom"] / 1024, abs=0.003)
    assert fy == pytest.approx((dy - st["panY"]) / st["zoom"] / 768, abs=0.003)
    reading.call("zoomBy(1.5)")  # about the canvas centre; the mark stays in view
    st = reading.state()
    ring_x = round(st["panX"] + fx * 1024 * st["zoom"] + 12)  # the ring's radius is 12 CSS px
    ring_y = round(st["panY"] + fy * 768 * st["zoom"])
    # An amber ring (R >> B; the image itself is grey) where the mark now sits after the zoom.
    assert max(p[0] - p[2] for p in reading.pixels(ring_x - 2, ring_y, 5)) > 100
    assert all(p[0] == p[2] for p in reading.pixels(ring_x + 40, ring_y, 5))
    reading.page.keyboard.press("0")  # reset keeps the mark
    reading.frame()
    assert reading.state()["mark"] is not None and float(reading.field("click_x")) == fx


def test_keyboard_only_reading_and_htmx_swap(reading: Reading) -> None:
    page = reading.page
    page.evaluate("() => { window.oldViewer = CxrViewer.get(document.querySelector('.viewer')); }")
    for key in ["r", "3", "a", "Enter"]:
        page.keyboard.press(key)
    reading.wait_ready("Case2")
    (method, body), *_ = reading.sent
    assert method == "POST"
    assert body["verdict"] == ["real"] and body["confidence"] == ["3"] and body["findings"] == ["Effusion"]
    assert body["case_id"] == ["Xyz123"] and body["client_token"] == ["9f0c1d2e"]
    assert int(body["active_ms"][0]) >= 0
    assert page.evaluate("() => window.oldViewer.destroyed") is True
    cv, st = reading.canvas(), reading.state()
    px = int(cv["w"] // 2) + 40
    assert abs(reading.pixels(px, int(cv["h"] // 2))[0][0] - (255 - int(image_x(st, px)) // 2)) <= 2
    page.keyboard.press("i")
    reading.frame()
    assert reading.state()["invert"] is True
    page.mouse.click(cv["left"] + cv["w"] / 2, cv["top"] + 100)  # data-click="off": no mark
    assert reading.field("click_x") == ""
    for key in ["s", "5", "Enter"]:
        page.keyboard.press(key)
    page.wait_for_function("() => document.querySelector('#reading-form [name=case_id]').value === 'Case2'")
    page.wait_for_timeout(300)
    assert len(reading.sent) == 2
    body = reading.sent[1][1]
    assert body["verdict"] == ["synthetic"] and body["confidence"] == ["5"] and body["case_id"] == ["Case2"]


def test_enter_without_an_answer_sends_nothing(reading: Reading) -> None:
    page = reading.page
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert reading.sent == []
    assert "real or synthetic" in page.inner_text(".form-error")
    page.keyboard.press("r")
    assert page.inner_text(".form-error") == ""
    page.keyboard.press("Enter")
    reading.wait_ready("Case2")
    assert len(reading.sent) == 1


def test_help_dialog_and_text_box_keys(reading: Reading) -> None:
    page = reading.page
    is_open = "() => document.getElementById('help-dialog').open"
    page.keyboard.press("?")
    assert page.evaluate(is_open) is True
    page.keyboard.press("r")  # answers are not taken while the help is up
    page.keyboard.press("Escape")
    assert page.evaluate(is_open) is False
    assert page.evaluate("() => document.querySelector('[name=verdict]:checked')") is None
    page.click("textarea")
    page.keyboard.type("rs3 ok")
    assert page.input_value("textarea") == "rs3 ok"
    assert page.evaluate("() => document.querySelector('[name=verdict]:checked')") is None
    page.keyboard.press("Escape")
    assert page.evaluate("() => document.activeElement.tagName") == "BODY"
    page.keyboard.press("Alt+s")  # modified keys belong to the browser
    assert page.evaluate("() => document.querySelector('[name=verdict]:checked')") is None
    page.keyboard.press("s")
    page.keyboard.press("4")
    page.click("textarea")
    page.keyboard.press("Control+Enter")
    reading.wait_ready("Case2")
    body = reading.sent[0][1]
    assert body["verdict"] == ["synthetic"] and body["free_text"] == ["rs3 ok"]


def test_enter_on_feedback_goes_next_and_back_stays(reading: Reading) -> None:
    page = reading.page
    reading.replies["POST"] = FEEDBACK
    page.keyboard.press("r")
    page.keyboard.press("2")
    url = page.url
    for _ in range(2):  # the Back button, pressed again and again, must not leave the case
        page.go_back()
        page.wait_for_timeout(100)
    assert page.url == url and page.evaluate("() => !!document.getElementById('reading-form')")
    page.keyboard.press("Enter")
    page.wait_for_selector("#case-region.feedback [data-next]")
    page.keyboard.press("Enter")
    reading.wait_ready("Case2")
    assert [m for m, _ in reading.sent] == ["POST", "GET"]


FULLSCREEN_IS_VIEWER = "() => document.fullscreenElement === document.querySelector('#case-region .viewer')"


def edge_row(reading: Reading) -> list[int]:
    """Red values of 48 device pixels across a hard edge magnified 8 times at the canvas centre.

    A window 2 grey levels wide at level 128 turns case1's ramp into black up to image column 511 and white
    from 512 on; after fit the view centre is column 512, and zooming about the centre keeps it there.
    """
    reading.call("setWindow(2, 128)")
    reading.call("oneToOne()")
    reading.call("zoomBy(8)")
    st, cv = reading.state(), reading.canvas()
    assert st["zoom"] == 8
    edge = round(st["panX"] + 512 * st["zoom"])
    assert abs(edge - cv["w"] / 2) <= 1
    return [p[0] for p in reading.pixels(edge - 24, int(cv["h"] // 2), 48)]


def test_magnified_image_is_interpolated_unless_pixels_is_on(reading: Reading) -> None:
    smooth = edge_row(reading)
    assert reading.state()["smooth"] is True and reading.page.evaluate(SMOOTHING) is True
    assert smooth[0] == 0 and smooth[-1] == 255
    assert sum(8 < v < 247 for v in smooth) >= 3  # intermediate greys across the edge
    assert smooth == sorted(smooth)  # a monotone ramp, no ringing back and forth
    reading.page.keyboard.press("x")
    reading.frame()
    st, y = reading.state(), int(reading.canvas()["h"] // 2)
    blocky = [p[0] for p in reading.pixels(round(st["panX"] + 512 * 8) - 24, y, 48)]
    assert st["pixels"] is True and st["smooth"] is False
    assert set(blocky) == {0, 255} and blocky == sorted(blocky)  # one step: the actual pixels
    assert reading.page.get_attribute("[data-viewer=pixels]", "aria-pressed") == "true"
    assert "pixels" in reading.page.inner_text(".viewer-readout")
    reading.page.keyboard.press("f")  # minified stays smooth whatever the toggle
    reading.frame()
    assert reading.state()["zoom"] < 1 and reading.page.evaluate(SMOOTHING) is True
    reading.page.click("[data-viewer=pixels]")
    reading.frame()
    assert reading.state()["pixels"] is False
    assert reading.page.get_attribute("[data-viewer=pixels]", "aria-pressed") == "false"


def loupe_slope(reading: Reading, x: int, y: int) -> float:
    """Grey levels per device pixel on the row through (x, y), over ±60 px."""
    left, right = reading.pixels(x - 60, y)[0][0], reading.pixels(x + 60, y)[0][0]
    return (right - left) / 120


def test_loupe_magnifies_three_times_and_leaves_drags_and_clicks_alone(reading: Reading) -> None:
    page, cv, st = reading.page, reading.canvas(), reading.state()
    x, y = 300, 300  # device px = CSS px into the canvas (DPR 1)
    unmagnified = 0.25 / st["zoom"]  # case1: a quarter grey level per image column
    page.mouse.move(cv["left"] + x, cv["top"] + y)
    assert loupe_slope(reading, x, y) == pytest.approx(unmagnified, rel=0.15)
    page.keyboard.press("z")
    reading.frame()
    assert reading.state()["loupe"] is True
    assert page.get_attribute("[data-viewer=loupe]", "aria-pressed") == "true"
    assert loupe_slope(reading, x, y) == pytest.approx(unmagnified / 3, rel=0.15)
    centre = reading.pixels(x, y)[0][0]
    assert abs(centre - case1_value(image_x(st, x))) <= 2  # the point under the pointer stays put
    # A window drag and a still click with the loupe on do what they do without it.
    page.mouse.down()
    page.mouse.move(cv["left"] + x + 40, cv["top"] + y, steps=5)
    page.mouse.up()
    reading.frame()
    assert reading.state()["width"] == pytest.approx(256 + 20) and reading.field("click_x") == ""
    page.mouse.click(cv["left"] + x, cv["top"] + y)
    reading.frame()
    assert float(reading.field("click_x")) == pytest.approx(image_x(st, x) / 1024, abs=0.003)
    # With no pointer over the image (keyboard use) the loupe sits at the view centre.
    page.mouse.move(cv["left"] + 5, 5)
    reading.frame()
    cx, cy = int(cv["w"] // 2), int(cv["h"] // 2)
    w = reading.state()["width"]
    assert loupe_slope(reading, cx, cy) == pytest.approx(unmagnified * 255 / (w - 1) / 3, rel=0.15)
    page.keyboard.press("z")
    reading.frame()
    assert reading.state()["loupe"] is False
    assert loupe_slope(reading, cx, cy) == pytest.approx(unmagnified * 255 / (w - 1), rel=0.15)


def test_window_and_level_steps_from_the_keyboard(reading: Reading) -> None:
    page = reading.page
    for key, (width, level) in [
        ("]", (272, 128)),
        ("[", (256, 128)),
        ("[", (240, 128)),
        ("'", (240, 136)),
        (";", (240, 128)),
        (";", (240, 120)),
    ]:
        page.keyboard.press(key)
        reading.frame()
        st = reading.state()
        assert (st["width"], st["level"], st["preset"]) == (width, level, None), key
    assert page.inner_text(".viewer-readout").startswith("W 240 L 120")
    page.keyboard.press("p")  # presets cycle from the start after a manual window
    reading.frame()
    st = reading.state()
    assert (st["preset"], st["width"], st["level"]) == ("full", 256, 128)
    page.keyboard.press("p")
    reading.frame()
    assert reading.state()["preset"] == "dark"
    assert page.get_attribute("[data-preset=dark]", "aria-pressed") == "true"
    assert page.inner_text("[data-preset=dark]") == "Dark range"


def help_keys(page: Any) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('#help-dialog kbd')].map(k => k.textContent)")


def test_help_lists_every_key_once_from_the_one_table(reading: Reading) -> None:
    page = reading.page
    page.keyboard.press("?")
    assert page.evaluate("() => document.getElementById('help-dialog').open") is True
    listed = help_keys(page)
    table = page.evaluate("() => CxrKeys.list().map(k => k.shown)")
    assert len(table) == len(set(table)) >= 20  # no key twice in the table itself
    assert sorted(listed) == sorted(set(listed))  # and none twice in the dialog
    form_keys = ["R", "S", "1", "2", "3", "4", "5", "A", "B", "C"]
    assert sorted(listed) == sorted(table + form_keys)
    rows = page.inner_text("#help-dialog table")
    assert "Effusion" in rows and "Confidence" in rows and "lung" not in rows.lower()
    page.keyboard.press("Escape")
    # A finding that takes a table key wins it: the key toggles the finding, the help lists it once.
    page.evaluate(
        """() => { document.querySelector('.findings').insertAdjacentHTML('beforeend', '<label><input'
             + ' type="checkbox" name="findings" value="Hernia" data-key="z"> <kbd>Z</kbd> Hernia</label>');
           CxrKeys.renderHelp(document.getElementById('case-region')); }"""
    )
    assert help_keys(page).count("Z") == 1
    page.keyboard.press("z")
    reading.frame()
    assert page.evaluate("() => document.querySelector('[value=Hernia]').checked") is True
    assert reading.state()["loupe"] is False
    # The server prints no key rows of its own: the dialog's rows all come from the table and the form.
    template = (REPO / "templates/partials/readings/case.html").read_text()
    dialog = template[template.index('<dialog id="help-dialog"') : template.index("</dialog>")]
    assert "<kbd>" not in dialog and "<tr>" not in dialog


def test_t_focuses_the_free_text_box(reading: Reading) -> None:
    page = reading.page
    page.keyboard.press("t")
    assert page.evaluate("() => document.activeElement.name") == "free_text"
    assert page.input_value("textarea") == ""  # the key itself is not typed
    page.keyboard.type("tr")
    page.keyboard.press("Escape")
    assert page.evaluate("() => document.activeElement.tagName") == "BODY"
    assert page.input_value("textarea") == "tr"
    assert page.evaluate("() => document.querySelector('[name=verdict]:checked')") is None


def test_full_screen_enters_refits_and_leaves(reading: Reading) -> None:
    page = reading.page
    before = reading.canvas()
    page.keyboard.press("v")
    page.wait_for_function(FULLSCREEN_IS_VIEWER)
    page.wait_for_function(f"() => document.querySelector('#case-region canvas').width > {before['w']}")
    reading.frame()
    st, cv = reading.state(), reading.canvas()
    assert st["fullscreen"] is True
    assert page.get_attribute("[data-viewer=fullscreen]", "aria-pressed") == "true"
    assert st["zoom"] == pytest.approx(min(cv["w"] / 1024, cv["h"] / 768), rel=1e-3)  # re-fitted
    page.keyboard.press("v")
    page.wait_for_function("() => document.fullscreenElement === null")
    page.keyboard.press("v")
    page.wait_for_function(FULLSCREEN_IS_VIEWER)
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.fullscreenElement === null")
    page.wait_for_function(f"() => document.querySelector('#case-region canvas').width === {before['w']}")
    reading.frame()
    assert reading.state()["fullscreen"] is False
    assert page.get_attribute("[data-viewer=fullscreen]", "aria-pressed") == "false"
    # Chosen again, full screen carries over to the next case's viewer.
    page.click("[data-viewer=fullscreen]")
    page.wait_for_function(FULLSCREEN_IS_VIEWER)
    for key in ["r", "3", "Enter"]:
        page.keyboard.press(key)
    reading.wait_ready("Case2")
    page.wait_for_function(FULLSCREEN_IS_VIEWER)
