/* CXR Realism Lab: keyboard-first answering on the reading page.
 *
 * The keys themselves are listed once, in keys.js, with what each does; the help dialog is built from that
 * table. This file decides when a key may act and in which order (ignored with Ctrl/Alt/Meta): first the
 * answer keys the server prints on the form (input[data-key], then [data-shortcut] buttons), so a finding's
 * key wins over a table key of the same letter; then the table. While a text field has focus only Escape
 * (leave it) and Ctrl/Cmd+Enter (submit) act; while the help is open only ? and Escape do.
 *
 * Global listeners are registered once and look up the current #case-region at event time, because
 * htmx replaces that region (outerHTML) after every submit.
 */
(function () {
  "use strict";

  const IDLE_AFTER_MS = 30000; // reading counts as active this long after the last interaction

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
    const flag = f.elements.namedItem("unreadable_reason");
    if (flag && flag.value) return ""; // flagged unreadable: no verdict or confidence is asked
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
    if (show && !d.open) {
      window.CxrKeys.renderHelp(region());
      d.showModal();
      d.scrollTop = 0; // focus on Close, at the bottom, would otherwise scroll the first rows away
    } else if (!show && d.open) {
      d.close();
    }
  }

  /** Put the caret in the free-text box (leaving full screen, where the form is out of sight). */
  function focusText() {
    const box = document.querySelector("#case-region textarea[name=free_text]");
    if (!box) return false;
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    box.focus();
    return true;
  }

  /** N: the unreadable reasons, open for choosing (Enter then submits the flag). */
  function flagUnreadable() {
    const select = document.querySelector("#case-region select[name=unreadable_reason]");
    if (!select) return false;
    select.focus();
    try {
      select.showPicker(); // needs the key press's user activation; older browsers just focus
    } catch (err) {
      /* focus alone: arrows choose */
    }
    return true;
  }

  /** Escape: close the help, else leave the text field, else leave full screen; false if none applied. */
  function escape(e) {
    const d = dialog();
    if (d && d.open) d.close();
    else if (isTextField(e.target)) e.target.blur();
    else if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else return false;
    return true;
  }

  const page = { submit, toggleHelp, focusText, flagUnreadable, escape };

  /** Run the keys.js table's action for this event's key, if it has one here. */
  function run(e) {
    const found = window.CxrKeys.lookup(e.key, region());
    if (!found) return;
    const v = found.viewer ? currentViewer() : null;
    if (found.viewer && !v) return;
    if (found.act(v, page, e) !== false) e.preventDefault();
  }

  function choose(f, key) {
    const input = f.querySelector(`input[data-key="${CSS.escape(key)}"]`);
    if (!input || input.matches(":disabled")) return false; // e.g. while the case is flagged unreadable
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
    if (e.key === "Escape") return run(e);
    if (isTextField(e.target)) {
      // A closed select has no use for Enter (its open picker takes the key before the page does).
      const select = e.target.tagName === "SELECT";
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey || (select && !e.repeat))) {
        e.preventDefault();
        submit();
      }
      return;
    }
    if (e.ctrlKey || e.altKey || e.metaKey) return; // leave browser shortcuts alone
    if (e.key === "?") return run(e);
    if (d && d.open) return; // the modal help takes no answers
    if (e.key === "Enter") {
      if (e.repeat) return e.preventDefault(); // a held Enter must not answer the next case too
      // A keyboard-focused helper button (toolbar, dialog) keeps Enter; anything else submits.
      const t = e.target;
      if (t && t.tagName === "BUTTON" && t.type !== "submit" && !t.hasAttribute("data-next")) return;
      return run(e);
    }
    const f = form();
    if (e.key.length === 1 && f && choose(f, e.key.toLowerCase())) return e.preventDefault();
    const r = region();
    const shortcut = e.key.length === 1 && r && r.querySelector(`[data-shortcut="${CSS.escape(e.key.toLowerCase())}"]`);
    if (shortcut) {
      e.preventDefault();
      return shortcut.click();
    }
    if (e.key.startsWith("Arrow") && e.target && e.target.tagName === "INPUT") return; // radios move
    run(e);
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
      window.CxrKeys.renderHelp(r);
      window.CxrKeys.decorate(r);
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
