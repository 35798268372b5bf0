/* CXR Realism Lab: the reader's radiograph viewer on a <canvas>.
 *
 * One viewer per `.viewer[data-src]`. The 8-bit greyscale PNG is decoded once; its grey values are kept
 * and every window/level/invert change rebuilds a 256-entry lookup table and re-maps the pixels into an
 * offscreen canvas at image size. Pan and zoom only redraw that offscreen canvas with a transform, so a
 * drag costs one drawImage per frame. Rendering happens on demand (one requestAnimationFrame per change),
 * never in a running loop, so a viewer that htmx swaps out leaves nothing behind.
 *
 * View model: `zoom` is device pixels per image pixel; (cx, cy) is the image point at the canvas centre.
 * state().panX/panY give the device-pixel position of the image's top-left corner in the canvas.
 *
 * Drawing: smooth (interpolated) whenever the image is scaled, up or down, so a 256 px film at fit is not
 * blocky; exactly 1:1 is drawn pixel for pixel, and with "Pixels" on (togglePixels) a magnified image
 * is drawn nearest-neighbour so the reader sees the actual pixels. The magnifier loupe (loupe.js) draws
 * over the image from the same offscreen canvas; toggleFullscreen puts the .viewer in full screen.
 *
 * Pointer, wheel, toolbar and giveaway-click input are in viewer-input.js, mixed into this class; the
 * keys are in keys.js (one table for every key of the page), dispatched by readings.js.
 *
 * Fetching ahead: a viewer with data-next-src (the image the reader will see after this one; the server
 * names it only once the previous answer is stored) fetches and decodes that one image once its own is
 * drawn, and keeps it in a single slot. The next viewer takes its image from the slot, so the swap after
 * Enter needs no image request and no decode. The slot holds one image: nothing further ahead is fetched.
 */
(function () {
  "use strict";

  // Presets, named for what they do to 8-bit grey values (0 = black, 255 = white; L = centre, W = width,
  // in grey levels). The files are 8-bit PNGs, not Hounsfield units, so these are not clinical windows.
  // full: the stored image unchanged (0..256 -> 0..255).
  // dark: greys 10..170 stretched over the full range: contrast in the dark part of the film.
  // mid: greys 90..210 stretched; darker greys go black, brighter white.
  // bright: greys 140..240 stretched: only the brightest part of the film keeps contrast.
  const PRESETS = {
    full: { width: 256, level: 128, label: "Full range" },
    dark: { width: 160, level: 90, label: "Dark range" },
    mid: { width: 120, level: 150, label: "Mid range" },
    bright: { width: 100, level: 190, label: "Bright range" },
  };
  const PRESET_ORDER = ["full", "dark", "mid", "bright"];
  const MAX_ZOOM = 32; // device px per image px
  const parts = window.CxrViewerParts || {}; // viewer-input.js and loupe.js, loaded before this file
  let fullscreenWanted = false; // the reader chose full screen: the next case's viewer takes it over
  const registry = new Map(); // root element -> Viewer (pruned when roots leave the document)
  const ahead = { src: null, decoded: null }; // the one image fetched ahead: its URL and decode promise

  // Fetch and decode `src` into the slot (replacing what it held); resolves to the Image or null.
  function fetchAhead(src) {
    if (ahead.src === src) return;
    const img = new Image();
    img.decoding = "async";
    img.src = src;
    ahead.src = src;
    ahead.decoded = img.decode().then(() => img, () => null);
  }

  // The slot's image when it holds `src` (emptying the slot), else null.
  function takeAhead(src) {
    if (ahead.src !== src) return null;
    const decoded = ahead.decoded;
    ahead.src = null;
    ahead.decoded = null;
    return decoded;
  }

  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  const fullscreenEl = () => document.fullscreenElement || document.webkitFullscreenElement || null;

  class Viewer {
    constructor(root) {
      this.root = root;
      this.canvas = root.querySelector("canvas.viewer-canvas");
      this.ctx = this.canvas.getContext("2d");
      this.readout = root.querySelector(".viewer-readout");
      this.clickOn = root.dataset.click === "on";
      this.width = 256;
      this.level = 128;
      this.invert = false;
      this.preset = "full";
      this.pixelMode = false; // magnified: nearest-neighbour (true) or interpolated (false)
      this.zoom = 1;
      this.cx = 0;
      this.cy = 0;
      this.fitted = true; // while true, a resize re-fits instead of keeping the zoom
      this.mark = null; // {x, y} in 0-1 image fractions
      this.grey = null; // Uint8Array(h*w), the decoded grey values
      this.imgW = 0;
      this.imgH = 0;
      this.lutDirty = true;
      this.frame = 0;
      this.destroyed = false;
      this.native = { ms: 0, since: null, reached: false }; // time drawn at >= 1 device px per image px
      this.pointers = new Map(); // pointerId -> {x, y} in CSS px, for drags and pinches
      this.drag = null;
      this.offscreen = document.createElement("canvas");
      this.loupe = new parts.Loupe(this);
      this.ready = this.load(root.dataset.src);
      this.bindPointer();
      this.bindToolbar();
      this.onFullscreen = () => this.fullscreenChanged();
      document.addEventListener("fullscreenchange", this.onFullscreen);
      if (fullscreenWanted) this.ready.then(() => this.setFullscreen(true));
      this.ro = new ResizeObserver((entries) => this.onResize(entries[entries.length - 1]));
      this.ro.observe(this.canvas);
      this.restoreMark();
    }

    async load(src) {
      this.root.dataset.viewerState = "loading";
      let img = await takeAhead(src);
      if (!img) {
        img = new Image();
        img.decoding = "async";
        img.src = src;
        try {
          await img.decode();
        } catch (err) {
          if (!this.destroyed) this.setStatus("error", "Image failed to load");
          return;
        }
      }
      if (this.destroyed) return;
      const w = img.naturalWidth;
      const h = img.naturalHeight;
      const tmp = document.createElement("canvas");
      tmp.width = w;
      tmp.height = h;
      const tctx = tmp.getContext("2d", { willReadFrequently: true });
      tctx.drawImage(img, 0, 0);
      const rgba = tctx.getImageData(0, 0, w, h).data; // (h*w*4) RGBA, R = G = B for a grey PNG
      this.grey = new Uint8Array(w * h);
      for (let i = 0, j = 0; i < this.grey.length; i += 1, j += 4) this.grey[i] = rgba[j];
      this.imgW = w;
      this.imgH = h;
      this.offscreen.width = w;
      this.offscreen.height = h;
      this.mapped = this.offscreen.getContext("2d").createImageData(w, h);
      this.fit();
      this.setStatus("ready");
      if (this.root.dataset.nextSrc) fetchAhead(this.root.dataset.nextSrc);
    }

    setStatus(state, text) {
      this.root.dataset.viewerState = state;
      if (text && this.readout) this.readout.textContent = text;
    }

    // --- public API -----------------------------------------------------------------------------
    state() {
      const [panX, panY] = this.pan();
      const r = (v) => Math.round(v * 1000) / 1000;
      return { width: r(this.width), level: r(this.level), zoom: r(this.zoom), invert: this.invert,
        panX: r(panX), panY: r(panY), preset: this.preset, mark: this.mark && { ...this.mark },
        pixels: this.pixelMode, smooth: this.smoothAt(this.zoom), loupe: this.loupe.on,
        fullscreen: fullscreenEl() === this.root };
    }

    /** What the reader has seen so far: zoom now, whether 1:1 or more was reached, and for how long. */
    viewingStats() {
      this.trackNative();
      return { zoom: Math.round(this.zoom * 1000) / 1000, oneToOneReached: this.native.reached,
        oneToOneMs: Math.round(this.native.ms) };
    }

    /** Advance the time at >= 1:1 (all image pixels on screen at full resolution or more). */
    trackNative() {
      const now = performance.now();
      const n = this.native;
      if (n.since !== null) n.ms += now - n.since;
      const atNative = this.grey !== null && this.zoom >= 0.999 && !document.hidden;
      n.since = atNative ? now : null;
      n.reached = n.reached || atNative;
    }

    setWindow(width, level, preset = null) {
      this.width = clamp(width, 2, 512); // >= 2 keeps the DICOM formula's W - 1 positive
      this.level = clamp(level, 0, 255);
      this.preset = preset;
      this.lutDirty = true;
      this.schedule();
    }

    setPreset(name) {
      const p = PRESETS[name];
      if (p) this.setWindow(p.width, p.level, name);
    }

    /** Narrow or widen the window by dWidth and move its centre by dLevel grey levels (keyboard steps). */
    stepWindow(dWidth, dLevel) {
      this.setWindow(this.width + dWidth, this.level + dLevel);
    }

    cyclePreset() {
      const i = PRESET_ORDER.indexOf(this.preset);
      this.setPreset(PRESET_ORDER[(i + 1) % PRESET_ORDER.length]);
    }

    toggleInvert() {
      this.invert = !this.invert;
      this.lutDirty = true;
      this.schedule();
    }

    togglePixels() {
      this.pixelMode = !this.pixelMode;
      this.schedule();
    }

    /** Whether an image drawn at `zoom` device px per image px is interpolated. */
    smoothAt(zoom) {
      if (zoom < 0.999) return true; // minified: always smooth
      if (zoom <= 1.001) return false; // 1:1 is pixel for pixel either way
      return !this.pixelMode;
    }

    toggleFullscreen() {
      this.setFullscreen(fullscreenEl() !== this.root);
    }

    setFullscreen(on) {
      if (this.destroyed) return;
      fullscreenWanted = on;
      const current = fullscreenEl();
      if (on && current !== this.root && this.root.requestFullscreen) {
        // Refused without a recent key press or click (e.g. the next case arriving late): stay windowed.
        this.root.requestFullscreen().catch(() => { fullscreenWanted = false; });
      } else if (!on && current && document.exitFullscreen) {
        document.exitFullscreen().catch(() => {});
      }
    }

    fullscreenChanged() {
      // Leaving full screen with Escape (or the browser's own control) while this viewer is still on the
      // page is the reader's choice; a viewer swapped out for the next case leaves it without meaning to.
      const mine = fullscreenEl() === this.root;
      if (this.wasFullscreen && !mine && this.root.isConnected) fullscreenWanted = false;
      this.wasFullscreen = mine;
      this.schedule();
    }

    fit() {
      if (!this.imgW) return;
      this.zoom = Math.min(this.canvas.width / this.imgW, this.canvas.height / this.imgH) || 1;
      this.cx = this.imgW / 2;
      this.cy = this.imgH / 2;
      this.fitted = true;
      this.schedule();
    }

    oneToOne() {
      this.zoom = 1; // one image pixel per device pixel, about the current view centre
      this.fitted = false;
      this.schedule();
    }

    reset() {
      this.invert = false;
      this.setPreset("full");
      this.fit();
    }

    /** Multiply the zoom, keeping the image point under device pixel (px, py) in place. */
    zoomBy(factor, px = this.canvas.width / 2, py = this.canvas.height / 2) {
      if (!this.imgW) return;
      const minZoom = Math.min(this.canvas.width / this.imgW, this.canvas.height / this.imgH) / 4;
      const next = clamp(this.zoom * factor, Math.min(minZoom, this.zoom), MAX_ZOOM);
      const [ix, iy] = this.toImage(px, py);
      this.zoom = next;
      this.cx = ix - (px - this.canvas.width / 2) / next;
      this.cy = iy - (py - this.canvas.height / 2) / next;
      this.fitted = false;
      this.schedule();
    }

    /** Move the image by (dx, dy) CSS pixels. */
    panBy(dx, dy) {
      const dpr = this.dpr();
      this.cx -= (dx * dpr) / this.zoom;
      this.cy -= (dy * dpr) / this.zoom;
      this.fitted = false;
      this.schedule();
    }

    destroy() {
      this.destroyed = true;
      this.ro.disconnect();
      this.loupe.destroy();
      document.removeEventListener("fullscreenchange", this.onFullscreen);
      if (this.frame) cancelAnimationFrame(this.frame);
      this.frame = 0;
      registry.delete(this.root);
    }

    // --- geometry -------------------------------------------------------------------------------
    dpr() {
      return window.devicePixelRatio || 1;
    }

    pan() {
      return [this.canvas.width / 2 - this.cx * this.zoom, this.canvas.height / 2 - this.cy * this.zoom];
    }

    toImage(px, py) {
      const [panX, panY] = this.pan();
      return [(px - panX) / this.zoom, (py - panY) / this.zoom];
    }

    eventToDevice(e) {
      const rect = this.canvas.getBoundingClientRect();
      return [
        ((e.clientX - rect.left) * this.canvas.width) / Math.max(1, rect.width),
        ((e.clientY - rect.top) * this.canvas.height) / Math.max(1, rect.height),
      ];
    }

    onResize(entry) {
      if (!this.root.isConnected) return this.destroy();
      const dpr = window.devicePixelRatio || 1;
      let w = Math.round(entry.contentRect.width * dpr);
      let h = Math.round(entry.contentRect.height * dpr);
      // The exact device-pixel box, where the browser reports one that agrees with the DPR (emulated
      // device scale factors report CSS pixels there).
      const box = entry.devicePixelContentBoxSize && entry.devicePixelContentBoxSize[0];
      if (box && Math.abs(box.inlineSize - w) <= 1 && Math.abs(box.blockSize - h) <= 1) {
        w = box.inlineSize;
        h = box.blockSize;
      }
      if (w === this.canvas.width && h === this.canvas.height) return;
      this.canvas.width = Math.max(1, w);
      this.canvas.height = Math.max(1, h);
      if (this.fitted) this.fit(); // the view centre (cx, cy) and zoom are otherwise kept
      this.render(); // resizing clears the canvas: redraw now rather than flash black for a frame
    }

    // --- rendering ------------------------------------------------------------------------------
    schedule() {
      if (this.frame || this.destroyed) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    }

    /** Re-map grey values through window/level: a 256-entry LUT, applied once per W/L change. */
    applyLut() {
      const lut = new Uint32Array(256);
      const bytes = new Uint8Array(lut.buffer); // written bytewise so the RGBA order is endian-proof
      // DICOM PS3.3 C.11.2.1.2 linear VOI: out = ((v - (L - 0.5)) / (W - 1) + 0.5) * 255, clamped. It is
      // the brief's (v - (L - W/2)) / W * 255 with the half-bin correction that makes W 256 / L 128 the
      // exact identity on 8-bit data (the uncorrected form maps 255 to 254).
      const { width: w, level: l } = this;
      for (let v = 0; v < 256; v += 1) {
        let out = Math.round(clamp(((v - (l - 0.5)) / (w - 1) + 0.5) * 255, 0, 255));
        if (this.invert) out = 255 - out;
        bytes.set([out, out, out, 255], v * 4);
      }
      const px = new Uint32Array(this.mapped.data.buffer); // (h*w) packed RGBA
      const grey = this.grey;
      for (let i = 0; i < grey.length; i += 1) px[i] = lut[grey[i]];
      this.offscreen.getContext("2d").putImageData(this.mapped, 0, 0);
      this.lutDirty = false;
    }

    render() {
      if (this.destroyed || !this.grey) return;
      if (this.lutDirty) this.applyLut();
      const ctx = this.ctx;
      const [panX, panY] = this.pan();
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
      ctx.imageSmoothingEnabled = this.smoothAt(this.zoom);
      ctx.imageSmoothingQuality = "high";
      ctx.setTransform(this.zoom, 0, 0, this.zoom, panX, panY);
      ctx.drawImage(this.offscreen, 0, 0);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      this.trackNative();
      if (this.mark) this.drawMark(panX + this.mark.x * this.imgW * this.zoom,
        panY + this.mark.y * this.imgH * this.zoom);
      if (this.loupe.on) this.loupe.draw();
      this.updateReadout();
    }

    drawMark(x, y) {
      const dpr = this.dpr();
      const ctx = this.ctx;
      ctx.beginPath();
      ctx.arc(x, y, 12 * dpr, 0, 2 * Math.PI);
      ctx.lineWidth = 5 * dpr; // dark halo keeps the ring visible on white and on black
      ctx.strokeStyle = "rgba(0, 0, 0, 0.75)";
      ctx.stroke();
      ctx.lineWidth = 2.5 * dpr;
      ctx.strokeStyle = "#ffb000";
      ctx.stroke();
    }

    updateReadout() {
      if (this.readout) {
        const parts = [`W ${Math.round(this.width)}  L ${Math.round(this.level)}`,
          `${Math.round(this.zoom * 100)}%`];
        if (this.invert) parts.push("inverted");
        if (this.pixelMode) parts.push("pixels");
        this.readout.textContent = parts.join(" · ");
      }
      for (const b of this.root.querySelectorAll('[data-viewer="preset"]')) {
        b.setAttribute("aria-pressed", String(b.dataset.preset === this.preset));
      }
      const pressed = { invert: this.invert, pixels: this.pixelMode, loupe: this.loupe.on,
        fullscreen: fullscreenEl() === this.root };
      for (const [name, on] of Object.entries(pressed)) {
        const b = this.root.querySelector(`[data-viewer="${name}"]`);
        if (b) b.setAttribute("aria-pressed", String(on));
      }
    }
  }

  // Pointer, wheel, toolbar and giveaway-click methods (viewer-input.js).
  for (const name of Object.getOwnPropertyNames(parts.Input.prototype)) {
    if (name !== "constructor") Viewer.prototype[name] = parts.Input.prototype[name];
  }

  /** Drop viewers whose elements htmx has swapped out of the document. */
  function prune() {
    for (const [root, v] of registry) if (!root.isConnected) v.destroy();
  }

  function init(root) {
    prune();
    if (!root || !root.querySelector("canvas.viewer-canvas")) return null;
    let v = registry.get(root);
    if (!v) {
      v = new Viewer(root);
      registry.set(root, v);
    }
    return v;
  }

  function get(root) {
    return (root && registry.get(root)) || null;
  }

  function initWithin(el) {
    prune();
    if (!el || !el.querySelectorAll) return;
    if (el.matches(".viewer[data-src]")) init(el);
    for (const root of el.querySelectorAll(".viewer[data-src]")) init(root);
  }

  window.CxrViewer = { init, get, presets: PRESETS, presetOrder: PRESET_ORDER };
  document.addEventListener("htmx:load", (e) => initWithin((e.detail && e.detail.elt) || e.target));
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => initWithin(document.body));
  } else {
    initWithin(document.body);
  }
})();
