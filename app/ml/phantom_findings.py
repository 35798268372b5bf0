"""Labelled findings drawn into the phantom chest (ChestX-ray14 names).

A finding either changes the anatomy before it is drawn (Cardiomegaly enlarges the heart; lobar
Atelectasis lifts a hemidiaphragm and pulls the mediastinum) or adds a layer: ``opacity`` is the share of
lung air replaced by fluid or tissue (0..1), ``extra`` is added density (nodules, masses, pleural line) and
``ptx`` marks pleural air with no lung markings. Each finding has its own random stream, so forcing one
finding never moves another, and the anatomy stream is untouched by any of them. The stream is passed as
a SeedSequence so that adjust_anatomy and render_findings replay the same first draws.

Scale: the internal thoracic width (about 1.6 film units) stands for about 28 cm, so one film unit is about
17.5 cm. Nodules get diameters of 0.044-0.11 units (about 0.8-2.2 cm with lobulation, under 3 cm); masses
0.18-0.32 units (about 3-6 cm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from app.ml.phantom_anatomy import (
    SIDES,
    Anatomy,
    Grid,
    diaphragm_y,
    grow_tree,
    lateral_wall_u,
    lung_base_y,
    lung_margin,
    mediastinum_margin,
    smooth_noise,
    smoothstep,
    soft,
    splat_points,
)

# Order of ChestX-ray14's label list, restricted to the findings drawn here.
FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumothorax",
    "Consolidation",
)


@dataclass(frozen=True)
class FindingLayers:
    """Layers (N, N) float32 that the findings contribute (see the module docstring)."""

    opacity: np.ndarray
    extra: np.ndarray
    ptx: np.ndarray


def _side(u: float) -> int:
    return SIDES[0] if u < 0.5 else SIDES[1]


def adjust_anatomy(a: Anatomy, seeds: dict[str, np.random.SeedSequence]) -> Anatomy:
    """Apply the anatomical changes of the findings present (the keys of seeds)."""
    if "Cardiomegaly" in seeds:
        v = np.random.default_rng(seeds["Cardiomegaly"]).uniform(0.0, 1.0, 2)
        ctr = 0.55 + 0.12 * v[0]  # enlarged: cardiothoracic ratio above 0.5
        grow = ctr / a.ctr()
        left = a.heart[0] * (0.75 + 0.25 * grow)  # the left ventricle grows most (to the image right)
        a = replace(
            a, heart=(left, left + ctr * a.thorax_width()), heart_height=a.heart_height * (1 + 0.1 * v[1])
        )
    if "Atelectasis" in seeds:
        v = np.random.default_rng(seeds["Atelectasis"]).uniform(0.0, 1.0, 4)
        if v[0] >= 0.55 and v[2] < 0.7:  # lower-lobe collapse: volume loss lifts the dome, pulls the heart
            side = _side(v[1])
            domes = list(a.domes)
            domes[0 if side < 0 else 1] -= 0.03 + 0.03 * v[3]
            a = replace(a, domes=(domes[0], domes[1]), mediastinal_shift=side * (0.01 + 0.02 * v[3]))
    return a


def _place(
    rng: np.random.Generator, a: Anatomy, side: int, radius: float, t_range: tuple[float, float]
) -> tuple[float, float]:
    """A point (X, Y) inside one lung, clear of the heart by about radius (rejection sampling)."""
    base = lung_base_y(a, side)
    for _ in range(60):
        t, f = rng.uniform(*t_range), rng.uniform(0.15, 0.9)
        y = a.lung_top + t * (base - a.lung_top)
        x = side * (0.1 + f * (lateral_wall_u(a, side, y) - 0.1))
        p = (np.array(x), np.array(y))
        if lung_margin(a, *p, side) > radius and mediastinum_margin(a, *p) < -radius:
            return x, y
    return side * (a.lung_centre + 0.05), a.lung_top + 0.45 * (base - a.lung_top)


def _blob(
    g: Grid, centre: tuple[float, float], radius: float, rng: np.random.Generator, lobes: float
) -> np.ndarray:
    """Sphere-like density profile (N, N) with a lobulated outline of relative depth lobes."""
    dx, dy = g.X - centre[0], g.Y - centre[1]
    theta = np.arctan2(dy, dx)
    k, phase = np.array([2, 3, 5]), rng.uniform(0.0, 2 * np.pi, 3)
    amp = lobes * rng.uniform(0.3, 1.0, 3)
    edge = radius * (1.0 + sum(amp[i] * np.cos(k[i] * theta + phase[i]) for i in range(3)))
    r = np.hypot(dx, dy)
    return np.sqrt(np.clip(1.0 - (r / edge) ** 2, 0.0, 1.0)) * soft(edge - r, g, 0.004)


def _effusion(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Dependent fluid: homogeneous opacity with a meniscus climbing the lateral wall; blunts the angle."""
    v = rng.uniform(0.0, 1.0, 4)
    sides = (-1,) if v[0] < 0.4 else (1,) if v[0] < 0.75 else SIDES
    out = np.zeros_like(g.X)
    for i, side in enumerate(sides):
        frac = (0.28 + 0.2 * v[1]) * (0.8 if i else 1.0)  # share of the lung height, from the angle up
        base = lung_base_y(a, side)
        y_lat = base - frac * (base - a.lung_top)
        wall = a.lung_centre + a.lung_lat
        w = np.clip((wall - side * g.X) / (wall - 0.1), 0.0, 1.0)
        y_fluid = y_lat + (0.08 + 0.08 * v[2]) * (1.0 - (1.0 - w) ** 3)  # steep at the wall, flat medially
        layer = smoothstep((g.Y - y_fluid) / 0.08) * (side * g.X > 0)
        out = np.maximum(out, 0.97 * layer)
    return out


def _pneumothorax(a: Anatomy, g: Grid, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pleural air at the apex and lateral side: the lung edge pulled in, a thin visceral pleural line."""
    v = rng.uniform(0.0, 1.0, 3)
    side = _side(v[0])
    uh, yh = 0.2, a.hilum(side)
    base = lung_base_y(a, side)
    gap_apex, gap_side = 0.12 + 0.16 * v[1], 0.08 + 0.1 * v[2]
    taper = 1.0 - smoothstep((g.Y - yh) / (base - yh))  # the lateral gap closes towards the base
    sx = 1.0 - gap_side * taper / (a.lung_centre + a.lung_lat - uh)
    sy = 1.0 - gap_apex / (yh - a.lung_top)
    u = side * g.X
    u_c = np.where(u > uh, uh + (u - uh) / sx, u)
    dy = g.Y - yh
    y_c = np.where(dy < 0, yh + dy / sy, g.Y)
    collapsed = lung_margin(a, side * u_c, y_c, side)  # the shrunken lung's margin
    inside = soft(lung_margin(a, g.X, g.Y, side), g)
    ptx = inside * (1.0 - soft(collapsed, g, 0.006))
    active = np.maximum(smoothstep((u - uh) / 0.1), smoothstep((yh - g.Y) / 0.1))
    line = np.exp(-((collapsed / max(0.004, 0.6 * g.px)) ** 2)) * inside * active
    return ptx * active, 0.14 * line


def _patch(
    a: Anatomy,
    g: Grid,
    rng: np.random.Generator,
    side: int,
    t_range: tuple[float, float],
    size: float,
    cells: int,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Patchy airspace opacity (N, N) in 0..1 around a point in one lung, and its centre."""
    centre = _place(rng, a, side, 0.03, t_range)
    rx, ry, tilt = size * rng.uniform(0.8, 1.2), size * rng.uniform(0.6, 1.0), rng.uniform(-0.6, 0.6)
    dx, dy = g.X - centre[0], g.Y - centre[1]
    q = np.hypot(
        (dx * math.cos(tilt) + dy * math.sin(tilt)) / rx, (dy * math.cos(tilt) - dx * math.sin(tilt)) / ry
    )
    core = 1.0 - q * q
    # A wide ramp keeps the margins fluffy and the inside mottled rather than a flat plateau.
    return smoothstep((0.9 * core + 0.4 * smooth_noise(rng, cells, g) + 0.3) / 1.5), centre


def _consolidation(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Confluent lobar airspace opacity; upper/middle lobes stop at the horizontal fissure; bronchograms."""
    lobe = rng.choice(5, p=[0.18, 0.14, 0.3, 0.14, 0.24])  # RUL, RML, RLL, LUL, LLL
    side = -1 if lobe < 3 else 1
    t_range = [(0.1, 0.4), (0.5, 0.75), (0.6, 0.9), (0.1, 0.5), (0.6, 0.9)][lobe]
    patch, centre = _patch(a, g, rng, side, t_range, rng.uniform(0.2, 0.3), 26)
    fissure = a.hilum(-1) + 0.02
    if lobe == 0:
        patch *= soft(fissure - g.Y, g, 0.006)
    elif lobe == 1:
        patch *= soft(g.Y - fissure, g, 0.006)
    if rng.uniform() < 0.6:  # air bronchograms: dark branching tubes inside the opacity
        angles = np.array([0.0, 0.6, -0.6]) + (0.0 if side > 0 else np.pi) + rng.normal(0, 0.2, 3)
        origin = (centre[0] - side * 0.06, centre[1])
        x, y, sig, wt = grow_tree(rng, origin, angles, 0.05, 0.0035, generations=4, spread=0.5)
        patch = patch * (1.0 - 0.55 * np.clip(splat_points(g, x, y, wt, sig), 0.0, 1.0))
    return rng.uniform(0.75, 0.95) * patch


def _infiltration(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Ill-defined hazy, finer-textured opacity, sometimes in both lungs."""
    out = np.zeros_like(g.X)
    sides = SIDES if rng.uniform() < 0.3 else (SIDES[int(rng.uniform() < 0.5)],)
    for side in sides:
        patch, _ = _patch(a, g, rng, side, (0.3, 0.9), rng.uniform(0.16, 0.26), 48)
        out = np.maximum(out, rng.uniform(0.35, 0.55) * patch)
    return out


def _triangle(g: Grid, side: int, pts: list[tuple[float, float]]) -> np.ndarray:
    """Signed margin (N, N) of a triangle given as (u, Y) vertices on one side."""
    xs = [(side * p[0], p[1]) for p in pts]
    area = (xs[1][0] - xs[0][0]) * (xs[2][1] - xs[0][1]) - (xs[1][1] - xs[0][1]) * (xs[2][0] - xs[0][0])
    edges = []
    for i in range(3):  # distance to each edge, positive on the triangle's side
        (x0, y0), (x1, y1) = xs[i], xs[(i + 1) % 3]
        d = ((x1 - x0) * (g.Y - y0) - (y1 - y0) * (g.X - x0)) / math.hypot(x1 - x0, y1 - y0)
        edges.append(d * math.copysign(1.0, area))
    return np.minimum(np.minimum(edges[0], edges[1]), edges[2])


def _atelectasis(a: Anatomy, g: Grid, rng: np.random.Generator) -> np.ndarray:
    """Plate-like (discoid) band at a base, or lobar collapse: a dense wedge with volume loss."""
    v = rng.uniform(0.0, 1.0, 4)  # the same draws adjust_anatomy made
    side = _side(v[1])
    if v[0] < 0.55:
        cx, cy = _place(rng, a, side, 0.03, (0.55, 0.85))
        half_len, half_th, tilt = rng.uniform(0.07, 0.15), rng.uniform(0.008, 0.016), rng.uniform(-0.3, 0.3)
        dx, dy = g.X - cx, g.Y - cy
        along, across = dx * math.cos(tilt) + dy * math.sin(tilt), dy * math.cos(tilt) - dx * math.sin(tilt)
        return 0.9 * np.exp(-((across / half_th) ** 2)) * smoothstep((half_len - np.abs(along)) / 0.04)
    if v[2] < 0.7:  # lower lobe: wedge from the hilum to the medial hemidiaphragm
        lat = 0.3 + 0.1 * v[3]
        base_l = float(diaphragm_y(a, side, np.array(lat)))
        pts = [(0.18, a.hilum(side) + 0.05), (0.06, base_l + 0.08), (lat, base_l + 0.02)]
    else:  # right upper lobe: wedge against the upper mediastinum under a raised fissure
        side = -1
        pts = [(0.08, a.lung_top + 0.03), (0.1, a.hilum(side)), (0.42 + 0.1 * v[3], a.lung_top + 0.15)]
    return 0.88 * soft(_triangle(g, side, pts), g, 0.012)


def render_findings(a: Anatomy, g: Grid, seeds: dict[str, np.random.SeedSequence]) -> FindingLayers:
    """Draw the findings present (the keys of seeds) on grid g, after adjust_anatomy with the same seeds."""
    opacity, extra, ptx = np.zeros_like(g.X), np.zeros_like(g.X), np.zeros_like(g.X)
    clear = np.ones_like(g.X)  # product of (1 - opacity_i)
    for name in FINDINGS:
        if name not in seeds or name == "Cardiomegaly":
            continue
        rng = np.random.default_rng(seeds[name])
        if name == "Effusion":
            clear *= 1.0 - _effusion(a, g, rng)
        elif name == "Consolidation":
            clear *= 1.0 - _consolidation(a, g, rng)
        elif name == "Infiltration":
            clear *= 1.0 - _infiltration(a, g, rng)
        elif name == "Atelectasis":
            clear *= 1.0 - _atelectasis(a, g, rng)
        elif name == "Pneumothorax":
            layer, line = _pneumothorax(a, g, rng)
            ptx, extra = np.maximum(ptx, layer), extra + line
        else:  # Nodule (< 3 cm) or Mass (larger, lobulated)
            mass = name == "Mass"
            radius = rng.uniform(0.09, 0.16) if mass else rng.uniform(0.022, 0.055)
            side = _side(rng.uniform())
            centre = _place(rng, a, side, 0.5 * radius if mass else radius, (0.15, 0.85))
            density = 0.3 + 0.8 * radius
            extra = extra + density * _blob(g, centre, radius, rng, 0.1 if mass else 0.04)
    opacity = 1.0 - clear
    return FindingLayers(opacity.astype(np.float32), extra.astype(np.float32), ptx.astype(np.float32))
