/* CXR Realism Lab: keyboard-first answering on the reading page.
 *
 * All reading-page keys, in one place (letters are case-insensitive; ignored with Ctrl/Alt/Meta):
 *   r / s        verdict real / synthetic          1-5      confidence
 *   <data-key>   toggle that finding (letters the server prints next to each finding)
 *   <data-shortcut>  click that button (u: revise the previous answer, where the study allows it)
 *   Enter        submit (needs a verdict and a confidence); on a feedback panel: Next
 *   ?            open / close the key help          Escape   close the help, or leave the text box
 *   i invert     0 reset     = 1:1     f fit     p next window preset     + / - zoom     arrows pan
 * A finding's data-key wins over a viewer key of the same letter: the server lists only its own keys.
 * While the free-text box has focus only Escape (leave it) and Ctrl/Cmd+Enter (submit) act.
 *
 * Global listeners are registered once and look up the current #case-region at event time, because
 * htmx replaces that region (outerHTML) after every submit.
 */
(function () {
  "use strict";

  const IDLE_AFTER_MS = 30000; // reading counts as active this long after the last interaction
  const ARROW_PAN_CSS_PX = 60;
  const VIEWER_KEYS = {
    i: (v) => v.toggleInvert(),
    0: (v) => v.reset(),
    "=": (v) => v.oneToOne(),
    f: (v) => v.fit(),
    p: (v) => v.cyclePreset(),
    "+": (v) => v.zoomBy(1.25),
    "-": (v) => v.zoomBy(1 / 1.25),
    ArrowLeft: (v) => v.panBy(-ARROW_PAN_CSS_PX, 0),
    ArrowRight: (v) => v.panBy(ARROW_PAN_CSS_PX, 0),
    ArrowUp: (v) => v.panBy(0, -ARROW_PAN_CSS_PX),
    ArrowDown: (v) => v.panBy(0, ARROW_PAN_CSS_PX),
  };

  // --- active time: visible page AND an interaction within the last 30 s --------------------------
  // Kept as an accumulator advanced at each event, so no timer runs and nothing leaks between cases.
  const clock = { acc: 0, mark: performance.now(), activeUntil: 0, visible: !document.hidden };

  function advance(now) {
    if (clock.visible && clock.mark < clock.activeUntil) {
      clock.acc += Math.max(0, Math.min(now, clock.activeUntil) - clock.mark);
    }
    clock.mark = now;
  }

  function interacted() {
    const now = performance.now();
    advance(now);
    clock.activeUntil = now + IDLE_AFTER_MS;
  }

  function activeMs() {
    advance(performance.now());
    return Math.round(clock.acc);
  }

  function resetClock() {
    advance(performance.now());
    clock.acc = 0; // activeUntil is kept: the reader who just submitted is still at the desk
  }

  // --- current elements ---------------------------------------------------------------------------
  const region = () => document.getElementById("case-region");
  const form = () => document.getElementById("reading-form");
  const dialog = () => document.getElementById("help-dialog");

  function currentViewer() {
    const root = document.querySelector("#case-region .viewer") || document.querySelector(".viewer");
    const api = window.CxrViewer;
    return root && api ? api.get(root) || api.init(root) : null;
  }

  function isTextField(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !["radio", "checkbox", "button", "submit", "reset"].includes(el.type);
  }

  function showError(f, text) {
    const box = f.querySelector(".form-error");
    if (box) box.textContent = text;
  }

  /** The reason this form cannot be sent yet, or "" when it can. */
  function missing(f) {
    const need = [];
    if (!f.querySelector('input[name="verdict"]:checked')) need.push("real or synthetic (R / S)");
    if (!f.querySelector('input[name="confidence"]:checked')) need.push("a confidence (1–5)");
    return need.length ? `Choose ${need.join(" and ")} before submitting.` : "";
  }

  function submit() {
    const r = region();
    const next = r && r.querySelector("[data-next]");
    if (next) return next.classList.contains("htmx-request") ? undefined : next.click();
    const f = form();
    if (!f || f.classList.contains("htmx-request")) return; // one request at a time
    if (typeof f.requestSubmit === "function") f.requestSubmit();
    else if (window.htmx) window.htmx.trigger(f, "submit");
  }

  function toggleHelp(open) {
    const d = dialog();
    if (!d) return;
    const show = open === undefined ? !d.open : open;
    if (show && !d.open) d.showModal();
    else if (!show && d.open) d.close();
  }

  function choose(f, key) {
    const input = f.querySelector(`input[data-key="${CSS.escape(key)}"]`);
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (input.name === "verdict" || input.name === "confidence") showError(f, "");
    return true;
  }

  function onKey(e) {
    interacted();
    if (e.defaultPrevented || e.isComposing) return;
    const d = dialog();
    if (e.key === "Escape") {
      if (d && d.open) {
        e.preventDefault();
        d.close();
      } else if (isTextField(e.target)) {
        e.target.blur();
      }
      return;
    }
    if (isTextField(e.target)) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit();
      }
      return;
    }
    if (e.ctrlKey || e.altKey || e.metaKey) return; // leave browser shortcuts alone
    if (e.key === "?") {
      e.preventDefault();
      return toggleHelp();
    }
    if (d && d.open) return; // the modal help takes no answers
    if (e.key === "Enter") {
      if (e.repeat) return e.preventDefault(); // a held Enter must not answer the next case too
      // A keyboard-focused helper button (toolbar, dialog) keeps Enter; anything else submits.
      const t = e.target;
      if (t && t.tagName === "BUTTON" && t.type !== "submit" && !t.hasAttribute("data-next")) return;
      e.preventDefault();
      return submit();
    }
    const f = form();
    if (e.key.length === 1 && f && choose(f, e.key.toLowerCase())) return e.preventDefault();
    const r = region();
    const shortcut = e.key.length === 1 && r && r.querySelector(`[data-shortcut="${CSS.escape(e.key.toLowerCase())}"]`);
    if (shortcut) {
      e.preventDefault();
      return shortcut.click();
    }
    const action = VIEWER_KEYS[e.key];
    if (!action) return;
    if (e.key.startsWith("Arrow") && e.target && e.target.tagName === "INPUT") return; // radios move
    const v = currentViewer();
    if (v) {
      e.preventDefault();
      action(v);
    }
  }

  // Every path to a request (Enter, the Submit button, implicit submission) passes here first, in the
  // capture phase, before htmx's own submit handler on the form.
  function onSubmit(e) {
    const f = e.target;
    if (!f || f.id !== "reading-form") return;
    const busy = f.classList.contains("htmx-request");
    const why = busy ? "" : missing(f);
    if (busy || why) {
      e.preventDefault();
      e.stopImmediatePropagation();
      if (why) showError(f, why);
      return;
    }
    showError(f, "");
    const field = f.elements.namedItem("active_ms");
    if (field) field.value = String(activeMs());
  }

  let knownRegion = null;
  function onNewContent() {
    const r = region();
    if (r && r !== knownRegion) {
      knownRegion = r;
      resetClock();
    }
  }

  // --- no going back to an answered case ----------------------------------------------------------
  function pinHistory() {
    history.pushState({ cxrReading: true }, "", location.href);
  }

  document.addEventListener("keydown", onKey);
  document.addEventListener("submit", onSubmit, true);
  for (const type of ["pointermove", "pointerdown", "wheel"]) {
    document.addEventListener(type, interacted, { passive: true, capture: true });
  }
  document.addEventListener("visibilitychange", () => {
    advance(performance.now()); // close the interval under the old visibility first
    clock.visible = !document.hidden;
  });
  document.addEventListener("click", (e) => {
    const close = e.target.closest && e.target.closest("#help-dialog [data-close]");
    if (close) toggleHelp(false);
  });
  document.addEventListener("htmx:load", onNewContent);
  window.addEventListener("popstate", pinHistory);
  const start = () => {
    onNewContent();
    pinHistory();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  window.CxrReading = { activeMs };
})();
