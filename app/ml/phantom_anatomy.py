"""Normal chest anatomy of the procedural radiograph phantom, drawn in normalised film coordinates.

Coordinates: X grows to the image right, Y grows downwards; at nominal magnification the film spans
[-1, 1] in both. A PA film is read in the radiological convention, so the patient's right side
(``side = -1``) lies on the image left and ``u = side * X`` is the lateral distance from the midline.
All layers are "attenuation" maps (N, N) float32 that phantoms.py sums and exposes. Every random draw is
made before the pixel size is known, so one anatomy renders as the same film at any resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SIDES = (-1, 1)  # patient right (image left), patient left (image right)
_APEX_SHIFT = 0.08  # the apex lies this far medial of the lung's axis
_TREE_STEP = 0.004  # spacing of splatted points along a branch, in film units
_WIDTH_CLASSES = np.array([0.0016, 0.0028, 0.0048, 0.0080, 0.0120])  # splat blur sigmas, film units


@dataclass(frozen=True)
class Anatomy:
    """Per-patient shape parameters, all in film units (see the module docstring)."""

    scale: float  # magnification of the whole patient on the film
    rotation: float  # in-plane rotation, radians
    shift: tuple[float, float]  # patient offset (x, y) on the film
    body_half: float  # half-width of the chest at the skin
    lung_top: float  # Y of the lung apices
    lung_centre: float  # u of each lung's vertical axis
    lung_lat: float  # lateral half-width of a lung about its axis
    lung_med: float  # medial half-width of a lung about its axis
    domes: tuple[float, float]  # Y of the right and left hemidiaphragm domes (right is higher)
    heart: tuple[float, float]  # X of the right (image-left) and left (image-right) heart borders
    heart_height: float  # vertical semi-axis of the cardiac ellipse
    mediastinal_shift: float  # X offset of heart and mediastinum (volume loss pulls them)
    rib_top: float  # Y where the first posterior rib leaves the spine (T1)
    rib_step: float  # vertebral height, also the posterior rib spacing
    hila: tuple[float, float]  # Y of the right and left hila (left is higher)
    gastric_bubble: bool  # air in the stomach fundus under the left dome
    texture_seed: int  # seeds the vessel trees and parenchymal noise

    def dome(self, side: int) -> float:
        """Dome height of the hemidiaphragm on one side."""
        return self.domes[0] if side < 0 else self.domes[1]

    def hilum(self, side: int) -> float:
        """Hilum height on one side."""
        return self.hila[0] if side < 0 else self.hila[1]

    def thorax_width(self) -> float:
        """Internal thoracic width (between the lungs' lateral margins), for the cardiothoracic ratio."""
        return 2.0 * (self.lung_centre + self.lung_lat)

    def ctr(self) -> float:
        """Cardiothoracic ratio of this anatomy."""
        return (self.heart[1] - self.heart[0]) / self.thorax_width()


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one normal patient; a fixed number of draws so later streams do not shift."""
    v = rng.uniform(0.0, 1.0, 20)  # (20,) all the shape jitter at once
    lung_lat = 0.35 + 0.05 * v[0]
    lung_centre = 0.43 + 0.03 * v[1]
    thorax = 2.0 * (lung_centre + lung_lat)
    ctr = 0.41 + 0.08 * v[2]  # normal adults: CTR below 0.5
    width = ctr * thorax
    left = -(0.28 + 0.06 * v[3]) * width  # about a third of the heart lies right of the midline
    dome_r = 0.38 + 0.10 * v[4]
    hilum_r = -0.04 + 0.07 * v[5]
    return Anatomy(
        scale=0.93 + 0.10 * v[6],
        rotation=math.radians(-2.0 + 4.0 * v[7]),
        shift=(-0.03 + 0.06 * v[8], -0.03 + 0.06 * v[9]),
        body_half=lung_centre + lung_lat + 0.08 + 0.08 * v[10],
        lung_top=-0.76 + 0.08 * v[11],
        lung_centre=lung_centre,
        lung_lat=lung_lat,
        lung_med=0.30 + 0.04 * v[12],
        domes=(dome_r, dome_r + 0.05 + 0.05 * v[13]),
        heart=(left, left + width),
        heart_height=0.38 + 0.06 * v[14],
        mediastinal_shift=0.0,
        rib_top=-0.80 + 0.08 * v[15],
        rib_step=0.118 + 0.014 * v[16],
        hila=(hilum_r, hilum_r - 0.02 - 0.05 * v[17]),
        gastric_bubble=bool(v[18] < 0.7),
        texture_seed=int(v[19] * 2**31),
    )


@dataclass(frozen=True)
class Grid:
    """Film coordinates of every pixel for one pose: X, Y are (N, N) float32."""

    size: int
    X: np.ndarray
    Y: np.ndarray
    px: float  # one pixel in film units (anatomy scale included)
    pose: tuple[float, float, float, float]  # scale, rotation, shift x, shift y
    row_span: tuple[np.ndarray, np.ndarray]  # (N,) min and max Y of each row
    col_span: tuple[np.ndarray, np.ndarray]  # (N,) min and max X of each column

    def to_pixels(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map film coordinates to fractional (column, row) pixel positions."""
        s, r, sx, sy = self.pose
        xi = s * (math.cos(r) * x - math.sin(r) * y) + sx
        yi = s * (math.sin(r) * x + math.cos(r) * y) + sy
        return (xi + 1.0) * self.size / 2.0 - 0.5, (yi + 1.0) * self.size / 2.0 - 0.5

    def crop(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float) -> tuple[slice, slice]:
        """Rows and columns whose pixels reach the film box [x_lo, x_hi] x [y_lo, y_hi] (a cheap crop)."""
        rows = np.nonzero((self.row_span[1] >= y_lo) & (self.row_span[0] <= y_hi))[0]
        cols = np.nonzero((self.col_span[1] >= x_lo) & (self.col_span[0] <= x_hi))[0]
        if not rows.size or not cols.size:
            return slice(0, 0), slice(0, 0)
        return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def make_grid(a: Anatomy, size: int) -> Grid:
    """Pixel centres mapped into the patient's film coordinates (inverse of the pose)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0  # (N,) image coordinates
    xi, yi = t[None, :] - a.shift[0], t[:, None] - a.shift[1]
    c, s = math.cos(a.rotation), math.sin(a.rotation)
    X = ((c * xi + s * yi) / a.scale).astype(np.float32)
    Y = ((-s * xi + c * yi) / a.scale).astype(np.float32)
    pose = (a.scale, a.rotation, a.shift[0], a.shift[1])
    rows, cols = (Y.min(axis=1), Y.max(axis=1)), (X.min(axis=0), X.max(axis=0))
    return Grid(size=size, X=X, Y=Y, px=2.0 / (size * a.scale), pose=pose, row_span=rows, col_span=cols)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """Cubic ramp from 0 (x <= 0) to 1 (x >= 1)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def soft(margin: np.ndarray, g: Grid, width: float = 0.004) -> np.ndarray:
    """Anti-aliased inside indicator of a signed margin (film units), at least ~0.6 px wide."""
    w = max(width, 0.6 * g.px)
    return 0.5 + 0.5 * np.tanh(margin / w)


def diaphragm_y(a: Anatomy, side: int, u: np.ndarray) -> np.ndarray:
    """Height of one hemidiaphragm: a dome, steep laterally (costophrenic sulcus), gentle medially."""
    du = u - a.lung_centre
    lateral = 2.0 * du * du
    return a.dome(side) + np.where(du > 0, lateral, 1.2 * du * du)


def lung_base_y(a: Anatomy, side: int) -> float:
    """Height of the lateral costophrenic angle."""
    return float(diaphragm_y(a, side, np.array(a.lung_centre + a.lung_lat)))


def _lateral_half(a: Anatomy, t: np.ndarray) -> np.ndarray:
    """Lateral half-width of a lung at relative height t (0 apex, 1 costophrenic angle): a convex arc."""
    arc = np.sin(0.5 * np.pi * np.clip(t / 0.72, 0.0, 1.0)) ** 0.6
    return (a.lung_lat + _APEX_SHIFT) * arc + 0.03 * np.clip(t - 0.72, 0.0, 1.0) - _APEX_SHIFT


def lung_margin(a: Anatomy, X: np.ndarray, Y: np.ndarray, side: int) -> np.ndarray:
    """Signed distance-like margin of one lung (positive inside), ignoring the heart."""
    u = side * X
    base = lung_base_y(a, side)
    t = (Y - a.lung_top) / (base - a.lung_top)
    # Rounded apex; the medial border reaches the mediastinum a third of the way down.
    half_l = _lateral_half(a, t)
    half_m = (a.lung_med - _APEX_SHIFT) * np.sqrt(np.clip(t / 0.3, 0.0, 1.0)) + _APEX_SHIFT
    d_lat = a.lung_centre + half_l - u
    d_med = u - (a.lung_centre - half_m)
    d_dia = diaphragm_y(a, side, u) - Y
    d_top = Y - a.lung_top
    return np.minimum(np.minimum(d_lat, d_med), np.minimum(d_dia, d_top))


def mediastinum_margin(a: Anatomy, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Margin (positive inside) of the heart plus superior mediastinum and aortic knob."""
    x = X - a.mediastinal_shift
    left, right = a.heart
    half, cx = 0.5 * (right - left), 0.5 * (right + left)
    b, shear = a.heart_height, 0.22  # the apex leans to the image right
    semi_a = math.sqrt(max(half * half - (shear * b) ** 2, 1e-4))  # sheared ellipse keeps width 2*half
    cy = 0.5 * (a.domes[0] + a.domes[1]) - 0.02  # widest just above the diaphragm
    q = ((x - cx) - shear * (Y - cy)) / semi_a
    heart = 0.5 * min(semi_a, b) * (1.0 - q * q - ((Y - cy) / b) ** 2)
    upper = 0.09 + 0.03 * smoothstep((Y - a.lung_top) / 0.6)  # superior mediastinum half-width
    band = np.minimum(upper - np.abs(x - 0.01), cy - Y)
    knob = 0.06 - np.hypot(x - 0.12, (Y - (a.hila[1] - 0.2)) / 1.3)  # aortic knob, image right
    return np.maximum(np.maximum(heart, band), knob)


def splat_points(g: Grid, x: np.ndarray, y: np.ndarray, weight: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Render film-space points (M,) as Gaussian blobs of per-point sigma; returns (N, N) float32."""
    n = g.size
    col, row = g.to_pixels(x, y)
    to_px = n * g.pose[0] / 2.0  # film units -> pixels
    cls = np.abs(np.log(sigma[:, None] / _WIDTH_CLASSES[None, :])).argmin(axis=1)  # (M,) nearest class
    out = np.zeros((n, n), dtype=np.float32)
    c0, r0 = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    fc, fr = col - c0, row - r0
    for k, s in enumerate(_WIDTH_CLASSES):
        sel = cls == k
        if not sel.any():
            continue
        s_px = s * to_px
        # A line of unit weight peaks at 1 when sigma >= 0.5 px; thinner ones keep their integral, so
        # the same film looks alike at any resolution.
        w = weight[sel] * (_TREE_STEP * to_px * math.sqrt(2 * math.pi) * s_px)
        acc = np.zeros(n * n, dtype=np.float64)
        for dc, dr in ((0, 0), (1, 0), (0, 1), (1, 1)):
            cc, rr = c0[sel] + dc, r0[sel] + dr
            ww = w * np.where(dc, fc[sel], 1 - fc[sel]) * np.where(dr, fr[sel], 1 - fr[sel])
            ok = (cc >= 0) & (cc < n) & (rr >= 0) & (rr < n)
            acc += np.bincount(rr[ok] * n + cc[ok], weights=ww[ok], minlength=n * n)
        out += ndimage.gaussian_filter(acc.reshape(n, n), max(s_px, 0.5), truncate=3.0).astype(np.float32)
    return out


def grow_tree(
    rng: np.random.Generator,
    origin: tuple[float | np.ndarray, float | np.ndarray],
    angles: np.ndarray,
    length: float,
    width: float,
    generations: int,
    spread: float = 0.45,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dichotomous branching tree from origin (x, y); returns point x, y, sigma, relative weight (M,)."""
    n = angles.size
    px, py = np.broadcast_to(origin[0], n).astype(float), np.broadcast_to(origin[1], n).astype(float)
    ang = angles + rng.normal(0.0, 0.12, n)
    seg = length * rng.uniform(0.85, 1.15, n)
    wid, amp = np.full(n, width), np.ones(n)
    parts: list[tuple[np.ndarray, ...]] = []
    for _ in range(generations):
        curv = rng.normal(0.0, 0.45, ang.size)  # (B,) bend of each branch over its length
        m = max(2, int(math.ceil(seg.max() / _TREE_STEP)))
        s = np.linspace(0.0, 1.0, m)[None, :]  # (1, m)
        mid = ang[:, None] + 0.5 * curv[:, None] * s
        xs = px[:, None] + seg[:, None] * s * np.cos(mid)
        ys = py[:, None] + seg[:, None] * s * np.sin(mid)
        dens = (amp * seg / (m - 1))[:, None] / _TREE_STEP * np.ones_like(s)  # (B, m) corrected for spacing
        if not parts:  # trunks fade in from the hilum so their shared origins do not make a bright star
            dens = dens * (0.3 + 0.7 * smoothstep(s / 0.4))
        parts.append((xs.ravel(), ys.ravel(), np.repeat(wid, m), dens.ravel()))
        px, py, end = xs[:, -1], ys[:, -1], ang + curv
        fork = spread * rng.uniform(0.4, 1.0, (2, ang.size)) * np.array([[-1.0], [1.0]])
        ang = (end[None, :] + fork).ravel()
        px, py = np.tile(px, 2), np.tile(py, 2)
        seg = np.tile(seg, 2) * rng.uniform(0.72, 0.9, ang.size)
        wid, amp = np.tile(wid, 2) * 0.74, np.tile(amp, 2) * 0.72
        amp = amp * (rng.uniform(0.0, 1.0, ang.size) > 0.08)  # a few pruned branches
    x, y, sigma, weight = (np.concatenate(p) for p in zip(*parts, strict=True))
    return x, y, sigma, weight


def smooth_noise(rng: np.random.Generator, cells: int, g: Grid) -> np.ndarray:
    """Band-limited noise (N, N) of unit-ish std whose pattern is fixed in film units."""
    field = rng.standard_normal((cells, cells))
    coords = np.stack([(g.Y + 1.3) / 2.6 * (cells - 1), (g.X + 1.3) / 2.6 * (cells - 1)])
    # Cubic keeps coarse fields free of bilinear creases; fine ones (cells ~ pixels) need only linear.
    order = 3 if cells < 64 else 1
    return ndimage.map_coordinates(field, coords, order=order, mode="mirror").astype(np.float32)


def lateral_wall_u(a: Anatomy, side: int, y: float) -> float:
    """u of one lung's lateral margin at height y (the inner rib cage)."""
    t = (y - a.lung_top) / (lung_base_y(a, side) - a.lung_top)
    return a.lung_centre + float(_lateral_half(a, np.array(t)))


@dataclass(frozen=True)
class AnatomyLayers:
    """Attenuation layers (N, N) float32 of a normal chest; phantoms.py combines them with findings."""

    tissue: np.ndarray  # soft-tissue path: body, mediastinum, heart, hila; air of trachea and stomach
    air: np.ndarray  # lung air that findings may replace (visible lung plus some behind the heart)
    lung: np.ndarray  # soft mask of the visible lung fields
    markings: np.ndarray  # vessels and parenchymal texture, before masking by the lung
    bone: np.ndarray  # spine, ribs, clavicles, shoulders
    margins: tuple[np.ndarray, np.ndarray]  # lung margins (right, left) ignoring the heart


def _body(a: Anatomy, g: Grid) -> np.ndarray:
    """Soft-tissue path through the trunk, neck and shoulders; black air outside the skin."""
    u = np.abs(g.X)
    # Shoulder line: neck in the middle, shoulders sloping gently down towards the arms.
    y_sh = a.lung_top - 0.18 + 0.24 * smoothstep((u - 0.28) / 0.8) - 0.45 * smoothstep((0.3 - u) / 0.12)
    half = a.body_half + 0.3 * smoothstep((a.lung_top + 0.35 - g.Y) / 0.4)  # arms widen the top
    path = np.clip(1.0 - (g.X / half) ** 2, 0.0, 1.0) ** 0.35
    return path * soft(g.Y - y_sh, g, 0.02)


def _airways(a: Anatomy, g: Grid) -> np.ndarray:
    """Air column of the trachea and main bronchi (positive = air)."""
    carina = (0.0, 0.5 * (a.hila[0] + a.hila[1]) - 0.14)
    out = soft(0.03 - np.abs(g.X - 0.005), g) * soft(carina[1] - g.Y, g, 0.01)
    for side in SIDES:
        end = (side * 0.15, a.hilum(side) - 0.03)
        dx, dy = end[0] - carina[0], end[1] - carina[1]
        s = np.clip(((g.X - carina[0]) * dx + (g.Y - carina[1]) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist = np.hypot(g.X - carina[0] - s * dx, g.Y - carina[1] - s * dy)
        out = np.maximum(out, 0.6 * (1.0 - s) * soft(0.018 - dist, g))
    return out


def _spine(a: Anatomy, g: Grid) -> np.ndarray:
    """Vertebral bodies with disc spaces, endplates, pedicles and spinous processes."""
    x = g.X - 0.3 * a.mediastinal_shift
    half = 0.048 + 0.02 * np.clip((g.Y + 1.0) / 2.0, 0.0, 1.0)
    across = np.sqrt(np.clip(1.0 - (x / half) ** 2, 0.0, 1.0))
    phase = (g.Y - a.rib_top) / a.rib_step + 0.5
    off = np.abs(phase - np.floor(phase) - 0.5)  # 0 mid-body, 0.5 mid-disc
    body = smoothstep((0.42 - off) / 0.07) + 0.5 * np.exp(-(((off - 0.39) / 0.04) ** 2))
    ring = np.hypot((np.abs(x) - 0.72 * half) / 0.016, (phase - np.floor(phase) - 0.38) * a.rib_step / 0.022)
    pedicle = np.exp(-(((ring - 1.0) / 0.35) ** 2))
    spinous = np.exp(-((x / 0.012) ** 2) - (((phase - np.floor(phase) - 0.8) * a.rib_step / 0.025) ** 2))
    return 0.12 * across * (0.65 + 0.35 * body) + 0.04 * pedicle + 0.03 * spinous


def _band(Y: np.ndarray, yc: np.ndarray, slope: np.ndarray, half: float, cortex: float) -> np.ndarray:
    """Cross-section of a curved bone of half-width half about the centreline yc (film units)."""
    d = (Y - yc) / (half * np.sqrt(1.0 + slope * slope))  # perpendicular, in half-widths
    tube = np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0))
    return (1.0 - cortex) * tube + cortex * np.exp(-(((np.abs(d) - 0.85) / 0.2) ** 2))


def _ribs(a: Anatomy, g: Grid, out: np.ndarray, rng: np.random.Generator) -> None:
    """Posterior ribs sweep laterally and down from the spine; fainter anterior ribs run medially down."""
    for side in SIDES:
        jit = np.stack([rng.uniform(0.9, 1.1, 12), rng.uniform(-1.0, 1.0, 12)], axis=1)  # (12, 2)
        for k in range(12):
            y0 = a.rib_top + k * a.rib_step
            drop = (0.3 + 0.012 * k) * jit[k, 0]
            y0 += 0.015 * jit[k, 1]
            u0, u_end = 0.06, max(lateral_wall_u(a, side, y0 + drop) + 0.03, 0.3)
            half = 0.018 + 0.0016 * k
            box = g.crop(*sorted((side * (u0 - 0.05), side * (u_end + 0.05))), y0 - 0.06, y0 + drop + 0.06)
            X, Y = g.X[box], g.Y[box]
            below = 1.0 - 0.6 * smoothstep((Y - a.dome(side)) / 0.15)  # hidden by the abdomen
            v = (side * X - u0) / (u_end - u0)
            vc = np.clip(v, 0.0, 1.0)
            yc = y0 - 0.02 * np.sin(np.pi * vc) + drop * vc**1.6
            slope = (-0.02 * np.pi * np.cos(np.pi * vc) + 1.6 * drop * vc**0.6) / (u_end - u0)
            fade = np.clip(v / 0.04, 0.0, 1.0) * np.clip((1.03 - v) / 0.05, 0.0, 1.0)
            out[box] += 0.15 * fade * below * _band(Y, yc, slope, half, 0.3)
            # Anterior rib: from the lateral wall, medially and downwards to the costal cartilage.
            ya0, u_cc = y0 + drop + 0.01, 0.12 if k == 0 else 0.2 + 0.012 * k
            ya1 = ya0 + 0.17 + 0.012 * k
            box = g.crop(*sorted((side * (u_cc - 0.05), side * (u_end + 0.05))), ya0 - 0.06, ya1 + 0.06)
            X, Y = g.X[box], g.Y[box]
            below = 1.0 - 0.6 * smoothstep((Y - a.dome(side)) / 0.15)
            w = (u_end - side * X) / (u_end - u_cc)
            wc = np.clip(w, 0.0, 1.0)
            yc = ya0 + (ya1 - ya0) * wc**1.3 - 0.02 * np.sin(np.pi * wc)
            slope = -((ya1 - ya0) * 1.3 * wc**0.3 - 0.02 * np.pi * np.cos(np.pi * wc)) / (u_end - u_cc)
            fade = np.clip(w / 0.05, 0.0, 1.0) * np.clip((1.0 - w) / 0.25, 0.0, 1.0)
            out[box] += 0.1 * fade * below * _band(Y, yc, slope, 0.024, 0.15)


def _shoulders(a: Anatomy, g: Grid, out: np.ndarray) -> None:
    """Clavicles, humeral heads and the faint scapular blades."""
    for side in SIDES:
        u = side * g.X
        y_med, y_lat = a.lung_top + 0.15, a.lung_top - 0.05
        v = (u - 0.03) / 0.72
        vc = np.clip(v, 0.0, 1.0)
        yc = y_med + (y_lat - y_med) * vc + 0.025 * np.sin(2 * np.pi * vc)
        slope = ((y_lat - y_med) + 0.05 * np.pi * np.cos(2 * np.pi * vc)) / 0.72
        fade = np.clip(v / 0.03, 0.0, 1.0) * np.clip((1.02 - v) / 0.04, 0.0, 1.0)
        out += 0.28 * fade * _band(g.Y, yc, slope, 0.032 + 0.01 * np.exp(-((vc / 0.1) ** 2)), 0.5)
        r = np.hypot(u - 1.1, g.Y - (a.lung_top + 0.04)) / 0.16
        out += 0.22 * np.sqrt(np.clip(1.0 - r * r, 0.0, 1.0)) + 0.1 * np.exp(-(((r - 0.95) / 0.08) ** 2))
        # Scapular blade: a faint triangle lateral to the upper lung.
        y = g.Y - a.lung_top
        medial = u - (a.lung_centre + a.lung_lat - 0.05 + 0.1 * y)
        blade = np.minimum(np.minimum(medial, 0.55 - y), y + 0.02)
        out += 0.05 * soft(blade, g, 0.01)


def _markings(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Pulmonary vessels branching from each hilum plus fine parenchymal mottle."""
    xs, ys, sig, wt = [], [], [], []
    for side in SIDES:
        theta = np.array([-1.35, -0.95, -0.5, -0.05, 0.4, 0.8, 1.15, 1.45])  # from lateral, +down
        film = theta if side > 0 else np.pi - theta
        # Trunks leave from along the hilum, not from one point, so the hilum has no bright star.
        origin = (side * 0.17, a.hilum(side) + 0.05 * rng.uniform(-1.0, 1.0, theta.size))
        tree = grow_tree(rng, origin, film, 0.15, 0.013, generations=6)
        xs.append(tree[0]), ys.append(tree[1]), sig.append(tree[2]), wt.append(tree[3])
    x, y = np.concatenate(xs), np.concatenate(ys)
    vessels = splat_points(g, x, y, 0.15 * np.concatenate(wt), np.concatenate(sig))
    mottle = 0.03 * smooth_noise(rng, 110, g) + 0.02 * smooth_noise(rng, 36, g)
    return vessels + mottle


def render_anatomy(a: Anatomy, g: Grid) -> AnatomyLayers:
    """Draw the normal chest of anatomy a on grid g."""
    rng = np.random.default_rng(a.texture_seed)
    med = mediastinum_margin(a, g.X, g.Y)
    med_in = soft(med, g)
    # Liver and spleen end at the costophrenic level laterally, so the chest wall shows no dome edge.
    wall = a.lung_centre + a.lung_lat
    dia = np.where(
        g.X < 0, diaphragm_y(a, -1, np.minimum(-g.X, wall)), diaphragm_y(a, 1, np.minimum(g.X, wall))
    )
    body = _body(a, g)
    tissue = body * (1.0 + 0.04 * smooth_noise(rng, 8, g))
    # Heart and mediastinum above the diaphragm, liver and spleen below it: equally dense.
    tissue += 0.2 * np.minimum(
        body, np.maximum(med_in * soft(dia + 0.02 - g.Y, g, 0.02), soft(g.Y - dia, g, 0.03))
    )
    air = np.zeros_like(g.X)
    lung = np.zeros_like(g.X)
    margins = []
    for side in SIDES:
        m = lung_margin(a, g.X, g.Y, side)
        margins.append(m)
        depth = 0.5 + 0.5 * smoothstep(m / 0.14)  # thin lung at the margins, thick in the middle
        # Bases overlap the posterior sulci and breasts; apices the neck muscles: both look greyer.
        zone = 1.0 - 0.3 * smoothstep((g.Y - a.dome(side) + 0.35) / 0.4)
        zone *= 1.0 - 0.25 * smoothstep((a.lung_top + 0.22 - g.Y) / 0.22)
        vis = soft(np.minimum(m, -med), g)
        lung += vis
        air += depth * zone * (vis + 0.35 * soft(m, g) * med_in)
        hilum = np.exp(-(((side * g.X - 0.2) / 0.05) ** 2) - ((g.Y - a.hilum(side)) / 0.08) ** 2)
        tissue += 0.12 * hilum
    tissue -= 0.3 * _airways(a, g)
    if a.gastric_bubble:
        q = np.hypot((g.X - a.lung_centre + 0.06) / 0.09, (g.Y - a.domes[1] - 0.1) / 0.055)
        tissue -= 0.3 * soft(1.0 - q, g, 0.1) * soft(a.domes[1] + 0.11 - g.Y, g)
    ribs = np.zeros_like(g.X)
    _ribs(a, g, ribs, rng)
    bone = _spine(a, g) + ribs * (1.0 - 0.5 * med_in)  # the dense heart hides the ribs behind it
    _shoulders(a, g, bone)
    bone *= body > 0.01
    return AnatomyLayers(tissue, air, lung, _markings(a, g, rng), bone, (margins[0], margins[1]))
