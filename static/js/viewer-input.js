/* CXR Realism Lab: the viewer's pointer, wheel and toolbar input, and the giveaway click.
 *
 * Mixed into the Viewer class of viewer.js (loaded before it), so these methods run with `this` the viewer.
 * Mouse / pen / touch (Pointer Events): left-drag = window/level (right = wider window, down = higher
 * level, i.e. darker), Shift+left-drag or middle/right-drag = pan, wheel = zoom about the cursor,
 * double-click = fit, two-finger touch = pinch zoom and pan. With data-click="on", a still click
 * (< 4 CSS px of travel) marks the giveaway point in the form's click_x / click_y (0-1 image fractions).
 */
(function () {
  "use strict";

  const CLICK_SLOP_CSS_PX = 4; // travel under this counts as a still click
  const WL_PER_CSS_PX = 0.5; // grey levels of width/level per CSS pixel of drag

  class ViewerInput {
    // --- giveaway click -------------------------------------------------------------------------
    formInputs() {
      const region = this.root.closest("#case-region") || document;
      const form = region.querySelector("#reading-form") || document.getElementById("reading-form");
      return form ? [form.elements.namedItem("click_x"), form.elements.namedItem("click_y")] : [null, null];
    }

    restoreMark() {
      const [ix, iy] = this.formInputs();
      if (this.clickOn && ix && iy && ix.value !== "" && iy.value !== "") {
        this.mark = { x: Number(ix.value), y: Number(iy.value) };
      }
    }

    setMark(px, py) {
      const [ix, iy] = this.toImage(px, py);
      const x = ix / this.imgW;
      const y = iy / this.imgH;
      if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return; // a click beside the image marks nothing
      this.mark = { x, y };
      const [inX, inY] = this.formInputs();
      if (inX) inX.value = x.toFixed(4);
      if (inY) inY.value = y.toFixed(4);
      this.schedule();
    }

    // --- input binding --------------------------------------------------------------------------
    bindToolbar() {
      this.root.addEventListener("click", (e) => {
        const b = e.target.closest("[data-viewer]");
        if (!b || !this.root.contains(b)) return;
        const act = b.dataset.viewer;
        if (act === "preset") this.setPreset(b.dataset.preset);
        else if (act === "one-to-one") this.oneToOne();
        else if (act === "fit") this.fit();
        else if (act === "invert") this.toggleInvert();
        else if (act === "reset") this.reset();
        else if (act === "pixels") this.togglePixels();
        else if (act === "loupe") this.loupe.toggle();
        else if (act === "fullscreen") this.toggleFullscreen();
        // A mouse click must not leave focus on the button, or the next Enter would press it again
        // instead of submitting the reading.
        if (e.detail > 0) b.blur();
      });
    }

    bindPointer() {
      const c = this.canvas;
      c.addEventListener("contextmenu", (e) => e.preventDefault());
      c.addEventListener("dblclick", (e) => {
        e.preventDefault();
        this.fit();
      });
      c.addEventListener("wheel", (e) => {
        e.preventDefault(); // also stops trackpad pinch (ctrl+wheel) from zooming the page
        const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
        const [px, py] = this.eventToDevice(e);
        this.zoomBy(Math.exp(-e.deltaY * unit * 0.0015), px, py);
      }, { passive: false });
      c.addEventListener("pointerdown", (e) => this.onDown(e));
      c.addEventListener("pointermove", (e) => this.onMove(e));
      c.addEventListener("pointerup", (e) => this.onUp(e, true));
      c.addEventListener("pointercancel", (e) => this.onUp(e, false));
    }

    onDown(e) {
      if (e.button > 2) return;
      e.preventDefault(); // no text selection, no middle-button autoscroll
      // Looking at the image ends typing: leave the text box so the reading keys work again.
      const active = document.activeElement;
      if (active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT")) active.blur();
      capturePointer(this.canvas, e.pointerId);
      this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      const mode = e.button === 0 && !e.shiftKey ? "wl" : "pan";
      this.drag = this.pointers.size > 1 ? { mode: "pinch", moved: true }
        : { mode, moved: false, x0: e.clientX, y0: e.clientY, w0: this.width, l0: this.level };
    }

    onMove(e) {
      const prev = this.pointers.get(e.pointerId);
      if (!prev || !this.drag) return;
      if (this.drag.mode === "pinch") return this.onPinch(e, prev);
      const d = this.drag;
      // Until the pointer leaves the click slop nothing moves; then the pan catches up from the start.
      const from = d.moved ? prev : { x: d.x0, y: d.y0 };
      if (!d.moved && Math.hypot(e.clientX - d.x0, e.clientY - d.y0) >= CLICK_SLOP_CSS_PX) d.moved = true;
      if (d.moved && d.mode === "wl") {
        this.setWindow(d.w0 + (e.clientX - d.x0) * WL_PER_CSS_PX, d.l0 + (e.clientY - d.y0) * WL_PER_CSS_PX);
      } else if (d.moved) {
        this.panBy(e.clientX - from.x, e.clientY - from.y);
      }
      this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    }

    onPinch(e, prev) {
      const other = [...this.pointers].find(([id]) => id !== e.pointerId);
      if (!other) return;
      const o = other[1];
      const before = Math.hypot(prev.x - o.x, prev.y - o.y);
      const after = Math.hypot(e.clientX - o.x, e.clientY - o.y);
      this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      this.panBy((e.clientX - prev.x) / 2, (e.clientY - prev.y) / 2);
      const [px, py] = this.eventToDevice({ clientX: (e.clientX + o.x) / 2, clientY: (e.clientY + o.y) / 2 });
      if (before > 0 && after > 0) this.zoomBy(after / before, px, py);
    }

    onUp(e, completed) {
      if (!this.pointers.delete(e.pointerId)) return;
      const d = this.drag;
      if (this.pointers.size === 0) this.drag = null;
      if (completed && d && !d.moved && d.mode === "wl" && this.clickOn && this.grey) {
        const [px, py] = this.eventToDevice(e);
        this.setMark(px, py);
      }
    }
  }

  function capturePointer(canvas, id) {
    try {
      canvas.setPointerCapture(id);
    } catch (err) {
      // A synthetic or already-released pointer cannot be captured; the drag still works without it.
    }
  }

  window.CxrViewerParts = Object.assign(window.CxrViewerParts || {}, { Input: ViewerInput });
})();
