/* CXR Realism Lab: the viewer's magnifier loupe.
 *
 * A circle over the canvas that shows the image under it at FACTOR times the viewer's current zoom. It is
 * drawn from the viewer's offscreen canvas, so with the same window/level and invert, and interpolated or
 * not by the same rule as the image (viewer.smoothAt). The viewer calls draw() at the end of each render.
 * The loupe follows the pointer over the canvas; with no pointer there (keyboard use, or a pointer that has
 * left) it sits at the centre of the view. It only listens (passive pointermove / pointerleave) and never
 * captures or cancels an event, so drags, wheel zoom and the giveaway click work as they do without it.
 */
(function () {
  "use strict";

  const FACTOR = 3; // loupe magnification relative to the view
  const RADIUS_CSS_PX = 90;

  class Loupe {
    constructor(viewer) {
      this.viewer = viewer;
      this.on = false;
      this.at = null; // [x, y]: the pointer in canvas device px, or null when it is not over the canvas
      this.onMove = (e) => {
        this.at = viewer.eventToDevice(e);
        if (this.on) viewer.schedule();
      };
      this.onLeave = () => {
        this.at = null;
        if (this.on) viewer.schedule();
      };
      viewer.canvas.addEventListener("pointermove", this.onMove, { passive: true });
      viewer.canvas.addEventListener("pointerleave", this.onLeave, { passive: true });
    }

    toggle() {
      this.on = !this.on;
      this.viewer.root.dataset.loupe = this.on ? "on" : "off";
      this.viewer.schedule();
    }

    destroy() {
      this.viewer.canvas.removeEventListener("pointermove", this.onMove);
      this.viewer.canvas.removeEventListener("pointerleave", this.onLeave);
    }

    /** The loupe's centre and radius in canvas device px. */
    geometry() {
      const c = this.viewer.canvas;
      const [x, y] = this.at || [c.width / 2, c.height / 2];
      const r = Math.max(8, Math.min(RADIUS_CSS_PX * this.viewer.dpr(), Math.min(c.width, c.height) / 2 - 4));
      return { x, y, r };
    }

    draw() {
      const v = this.viewer;
      const ctx = v.ctx;
      const dpr = v.dpr();
      const { x, y, r } = this.geometry();
      const [ix, iy] = v.toImage(x, y); // the image point under the loupe's centre stays there
      const z = v.zoom * FACTOR;
      ctx.save();
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.clip();
      ctx.fillStyle = "#000";
      ctx.fill();
      ctx.imageSmoothingEnabled = v.smoothAt(z);
      ctx.imageSmoothingQuality = "high";
      ctx.setTransform(z, 0, 0, z, x - ix * z, y - iy * z);
      ctx.drawImage(v.offscreen, 0, 0);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      if (v.mark) v.drawMark(x + (v.mark.x * v.imgW - ix) * z, y + (v.mark.y * v.imgH - iy) * z);
      ctx.restore();
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.lineWidth = 4 * dpr; // a dark halo and a light ring: visible on black and on white
      ctx.strokeStyle = "rgba(0, 0, 0, 0.7)";
      ctx.stroke();
      ctx.lineWidth = 1.5 * dpr;
      ctx.strokeStyle = "rgba(230, 236, 245, 0.9)";
      ctx.stroke();
    }
  }

  window.CxrViewerParts = Object.assign(window.CxrViewerParts || {}, { Loupe });
})();
