/* CXR Realism Lab: viewing conditions and the unreadable flag on the reading pages.
 *
 * At submit, the reading form's hidden viewing fields get what this browser knows: screen and window size
 * (CSS px), the device pixel ratio, and from the viewer its zoom (device px per image px) and the time the
 * image was shown at 1:1 or larger. The server stores them with the answer (app/domain/viewing.py).
 *
 * Choosing a reason in "Cannot judge this case?" disables the verdict, confidence and findings: a flagged
 * case is stored with none of them, and disabled fields are not sent. Choosing "No, I can read it" brings
 * them back as they were.
 *
 * On the instructions page, an element with data-min-window-w / -h (the study's minimum window) shows its
 * warning when this window is smaller, before the reader starts; it re-checks when the window is resized.
 */
(function () {
  "use strict";

  const ANSWER_FIELDSETS = "fieldset.verdict, fieldset.confidence, fieldset.findings";

  function viewerStats() {
    const root = document.querySelector("#case-region .viewer");
    const api = window.CxrViewer;
    const v = root && api ? api.get(root) : null;
    return v && typeof v.viewingStats === "function" ? v.viewingStats() : null;
  }

  function fill(form) {
    const set = (name, value) => {
      const field = form.elements.namedItem(name);
      if (field && value !== undefined && value !== null) field.value = String(value);
    };
    set("screen_w", window.screen && Math.round(window.screen.width));
    set("screen_h", window.screen && Math.round(window.screen.height));
    set("window_w", Math.round(window.innerWidth));
    set("window_h", Math.round(window.innerHeight));
    set("device_pixel_ratio", Math.round((window.devicePixelRatio || 1) * 1000) / 1000);
    const stats = viewerStats();
    if (stats) {
      set("zoom_at_submit", stats.zoom);
      set("one_to_one_reached", stats.oneToOneReached ? "1" : "0");
      set("one_to_one_ms", stats.oneToOneMs);
    }
  }

  function applyUnreadable(form) {
    const select = form && form.elements.namedItem("unreadable_reason");
    if (!select) return;
    const flagged = select.value !== "";
    for (const fs of form.querySelectorAll(ANSWER_FIELDSETS)) fs.disabled = flagged;
    form.classList.toggle("flagged-unreadable", flagged);
  }

  function checkWindow() {
    for (const el of document.querySelectorAll("[data-min-window-w], [data-min-window-h]")) {
      const w = Number(el.dataset.minWindowW || 0);
      const h = Number(el.dataset.minWindowH || 0);
      const small = window.innerWidth < w || window.innerHeight < h;
      const size = el.querySelector("[data-window-size]");
      if (size) size.textContent = `${window.innerWidth} × ${window.innerHeight}`;
      el.hidden = !small;
    }
  }

  document.addEventListener(
    "submit",
    (e) => {
      if (e.target && e.target.id === "reading-form") fill(e.target);
    },
    true,
  );
  document.addEventListener("change", (e) => {
    if (e.target && e.target.name === "unreadable_reason") applyUnreadable(e.target.form);
  });
  document.addEventListener("visibilitychange", () => {
    const root = document.querySelector("#case-region .viewer");
    const v = root && window.CxrViewer ? window.CxrViewer.get(root) : null;
    if (v && typeof v.trackNative === "function") v.trackNative(); // hidden time does not count
  });
  const onLoad = () => {
    applyUnreadable(document.getElementById("reading-form"));
    checkWindow();
  };
  document.addEventListener("htmx:load", onLoad);
  window.addEventListener("resize", checkWindow);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", onLoad);
  else onLoad();
})();
