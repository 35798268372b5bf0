/* CXR Realism Lab: every key of the reading page in one table, and the help dialog built from it.
 *
 * A row of ROWS gives one line of the help: its label and its keys (KeyboardEvent.key values, letters in
 * lower case and matched case-insensitively), each key with its action act(viewer, page, event). `viewer`
 * is the current case's Viewer (rows marked viewer: true do nothing without one); `page` is readings.js's
 * helpers. An action that returns false did nothing, and the key keeps its default. readings.js decides
 * when a key may act at all (not while typing, not under the modal help) and dispatches through lookup().
 *
 * The answer keys are not in this table because the server prints them on the form: input[data-key] for
 * verdict, confidence and findings, [data-shortcut] for buttons such as Revise. readings.js tries them first,
 * so a finding's key wins over a key of this table, and the help then leaves that key out of these rows.
 * The help dialog's table (#help-dialog [data-keys]) is rebuilt from the form and ROWS for each new case.
 */
(function () {
  "use strict";

  const PAN_CSS_PX = 60;
  const ZOOM_STEP = 1.25;
  const WIDTH_STEP = 16; // grey levels per [ or ]
  const LEVEL_STEP = 8; // grey levels per ; or '

  const ROWS = [
    { group: "Answer", label: "submit (Ctrl+Enter inside the text box); on a feedback panel: next",
      keys: { Enter: (v, p) => p.submit() } },
    { group: "Answer", label: "type in the free-text box (Esc leaves it)", keys: { t: (v, p) => p.focusText() },
      when: (region) => !!region.querySelector("textarea[name=free_text]") },
    { group: "Answer", label: "flag the case unreadable: choose why, then Enter (instead of an answer)",
      keys: { n: (v, p) => p.flagUnreadable() } },
    { group: "Image", viewer: true, label: "next window preset: full, dark, mid, bright range",
      keys: { p: (v) => v.cyclePreset() } },
    { group: "Image", viewer: true, label: "narrow / widen the window (more / less contrast)",
      keys: { "[": (v) => v.stepWindow(-WIDTH_STEP, 0), "]": (v) => v.stepWindow(WIDTH_STEP, 0) } },
    { group: "Image", viewer: true, label: "lower / raise the level (image brighter / darker)",
      keys: { ";": (v) => v.stepWindow(0, -LEVEL_STEP), "'": (v) => v.stepWindow(0, LEVEL_STEP) } },
    { group: "Image", viewer: true, label: "invert", buttons: { i: "invert" }, keys: { i: (v) => v.toggleInvert() } },
    { group: "Image", viewer: true, label: "1:1 (one image pixel per screen pixel) / fit",
      buttons: { "=": "one-to-one", f: "fit" }, keys: { "=": (v) => v.oneToOne(), f: (v) => v.fit() } },
    { group: "Image", viewer: true, label: "zoom in / out",
      keys: { "+": (v) => v.zoomBy(ZOOM_STEP), "-": (v) => v.zoomBy(1 / ZOOM_STEP) } },
    { group: "Image", viewer: true, label: "pan", keys: {
      ArrowLeft: (v) => v.panBy(-PAN_CSS_PX, 0), ArrowRight: (v) => v.panBy(PAN_CSS_PX, 0),
      ArrowUp: (v) => v.panBy(0, -PAN_CSS_PX), ArrowDown: (v) => v.panBy(0, PAN_CSS_PX) } },
    { group: "Image", viewer: true, label: "pixels: show a magnified image's pixels as blocks (else smooth)",
      buttons: { x: "pixels" }, keys: { x: (v) => v.togglePixels() } },
    { group: "Image", viewer: true, label: "magnifier loupe (3× the view) on / off",
      buttons: { z: "loupe" }, keys: { z: (v) => v.loupe.toggle() } },
    { group: "Image", viewer: true, label: "full screen on / off", buttons: { v: "fullscreen" },
      keys: { v: (v) => v.toggleFullscreen() } },
    { group: "Image", viewer: true, label: "reset the view (window, invert, zoom)", buttons: { 0: "reset" },
      keys: { 0: (v) => v.reset() } },
    { group: "Help", label: "this help (again to close)", keys: { "?": (v, p) => p.toggleHelp() } },
    { group: "Help", label: "close the help, leave the text box or full screen",
      keys: { Escape: (v, p, e) => p.escape(e) } },
  ];
  const POINTER = [
    ["drag", "window / level (right: wider window, down: higher level)"],
    ["Shift+drag, right-drag", "pan"],
    ["wheel, pinch", "zoom about the pointer"],
    ["double-click", "fit"],
  ];
  const GROUPS = ["Answer", "Image", "Mouse and touch", "Help"];
  const SHOWN = { ArrowLeft: "←", ArrowRight: "→", ArrowUp: "↑", ArrowDown: "↓", Escape: "Esc" };
  const shown = (key) => SHOWN[key] || (key.length === 1 ? key.toUpperCase() : key);
  const normal = (key) => (key.length === 1 ? key.toLowerCase() : key);

  /** The row and action for `key` on this page, or null (not a key of the table, or the row is off). */
  function lookup(key, region) {
    const k = normal(key);
    const row = ROWS.find((r) => Object.prototype.hasOwnProperty.call(r.keys, k));
    if (!row || (row.when && !(region && row.when(region)))) return null;
    return { act: row.keys[k], viewer: !!row.viewer };
  }

  /** Every key of the table, in order: [{key, shown, label}]. */
  function list() {
    return ROWS.flatMap((r) => Object.keys(r.keys).map((key) => ({ key, shown: shown(key), label: r.label })));
  }

  // --- the help dialog ----------------------------------------------------------------------------
  const el = (tag, text) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function textOf(node) {
    const copy = node.cloneNode(true);
    for (const k of copy.querySelectorAll("kbd, input, textarea, select")) k.remove();
    return copy.textContent.replace(/\s+/g, " ").trim();
  }

  /** Help rows for the keys the server printed on the form and its buttons: [[keys], label]. */
  function answerRows(region) {
    const rows = [];
    const radios = new Map();
    for (const input of region.querySelectorAll("input[data-key]")) {
      const label = input.closest("label");
      const text = label ? textOf(label) : input.value;
      if (input.type !== "radio") {
        rows.push([[input.dataset.key], text]);
        continue;
      }
      if (!radios.has(input.name)) {
        const legend = input.closest("fieldset") && input.closest("fieldset").querySelector("legend");
        const group = { keys: [], texts: [], legend: legend ? textOf(legend) : input.name };
        radios.set(input.name, group);
        rows.push(group);
      }
      radios.get(input.name).keys.push(input.dataset.key);
      radios.get(input.name).texts.push(text);
    }
    for (const b of region.querySelectorAll("[data-shortcut]")) rows.push([[b.dataset.shortcut], textOf(b)]);
    return rows.map((r) => {
      if (Array.isArray(r)) return r;
      const named = r.texts.filter((t) => t !== "");
      const hint = r.keys.length > 1 && !named.length ? ` (${r.keys[0]} to ${r.keys[r.keys.length - 1]})` : "";
      return [r.keys, named.length ? `${r.legend}: ${named.join(" / ")}` : r.legend + hint];
    });
  }

  function helpRow(keys, label) {
    const tr = el("tr");
    const cell = el("td");
    keys.forEach((k, i) => {
      if (i) cell.append(" ");
      cell.append(el("kbd", shown(k)));
    });
    tr.append(cell, el("td", label));
    return tr;
  }

  /** Rebuild the help dialog's key table for this case region. */
  function renderHelp(region) {
    const body = region && region.querySelector("#help-dialog [data-keys]");
    if (!body) return;
    const answers = answerRows(region);
    const taken = new Set(answers.flatMap(([keys]) => keys.map(normal)));
    const byGroup = { Answer: answers, "Mouse and touch": POINTER.map(([how, what]) => [null, what, how]) };
    for (const r of ROWS) {
      if (r.when && !r.when(region)) continue;
      const keys = Object.keys(r.keys).filter((k) => !taken.has(k));
      if (keys.length) (byGroup[r.group] = byGroup[r.group] || []).push([keys, r.label]);
    }
    const viewer = region.querySelector(".viewer");
    if (viewer && viewer.dataset.click === "on") {
      byGroup["Mouse and touch"].push([null, "mark the point that gave the image away", "click"]);
    }
    const out = [];
    for (const g of GROUPS) {
      if (!byGroup[g] || !byGroup[g].length) continue;
      const head = el("tr");
      const th = el("th", g);
      th.colSpan = 2;
      th.scope = "colgroup";
      head.append(th);
      out.push(head);
      for (const [keys, label, how] of byGroup[g]) {
        if (keys) {
          out.push(helpRow(keys, label));
        } else {
          const tr = el("tr");
          tr.append(el("td", how), el("td", label));
          out.push(tr);
        }
      }
    }
    body.replaceChildren(...out);
  }

  /** Name each toolbar button's key in its tooltip and aria-keyshortcuts. */
  function decorate(region) {
    for (const r of ROWS) {
      for (const [key, name] of Object.entries(r.buttons || {})) {
        const b = region && region.querySelector(`.viewer [data-viewer="${name}"]`);
        if (!b) continue;
        b.title = `${b.textContent.trim()}: ${r.label} (${shown(key)})`;
        b.setAttribute("aria-keyshortcuts", key);
      }
    }
  }

  window.CxrKeys = { lookup, list, renderHelp, decorate };
})();
