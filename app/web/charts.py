"""Server-rendered SVG charts of the job pages (no JavaScript): training losses, the Fréchet distance per
checkpoint, and FID against 1/n. The reader study's figures are Vega-Lite (app.domain.figures)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

LOSS_SERIES = (("d_loss", "critic", "#3b6ea5"), ("g_loss", "generator", "#b5452f"))
PLOT_W, PLOT_H, PAD_L, PAD_B, PAD_T, PAD_R = 720, 260, 60, 34, 24, 16


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / (n - 1) if hi > lo else 1.0
    return [lo + i * step for i in range(n)]


def loss_chart(lines: list[dict]) -> Markup:
    """Critic and generator loss against thousands of images shown, with resolution changes marked."""
    points = [m for m in lines if "kimg" in m and all(k in m for k, _, _ in LOSS_SERIES)]
    if len(points) < 2:
        return Markup('<p class="muted">The loss curves appear after the first metrics lines.</p>')
    xs = [float(m["kimg"]) for m in points]
    ys = [float(m[k]) for m in points for k, _, _ in LOSS_SERIES]
    x0, x1 = xs[0], max(xs[-1], xs[0] + 1e-9)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1

    def px(x: float) -> float:
        return PAD_L + (x - x0) / (x1 - x0) * (PLOT_W - PAD_L - PAD_R)

    def py(y: float) -> float:
        return PAD_T + (y1 - y) / (y1 - y0) * (PLOT_H - PAD_T - PAD_B)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PLOT_W} {PLOT_H}" class="chart" role="img" '
        'aria-label="Loss curves">',
        "<style>text{font:11px system-ui,sans-serif;fill:#222}.res{fill:#888}</style>",
    ]
    for y in _ticks(y0, y1):
        yy = f"{py(y):.1f}"
        parts.append(f'<line x1="{PAD_L}" x2="{PLOT_W - PAD_R}" y1="{yy}" y2="{yy}" stroke="#eee"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in _ticks(x0, x1):
        parts.append(f'<text x="{px(x):.1f}" y="{PLOT_H - PAD_B + 16}" text-anchor="middle">{x:,.0f}</text>')
    parts.append(
        f'<text x="{(PAD_L + PLOT_W) / 2:.0f}" y="{PLOT_H - 4}" text-anchor="middle">'
        "thousands of images</text>"
    )
    previous = None
    for m, x in zip(points, xs, strict=True):  # a dashed line where the resolution grows
        if previous is not None and m.get("resolution") != previous:
            parts.append(
                f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{PAD_T}" y2="{PLOT_H - PAD_B}" '
                'stroke="#bbb" stroke-dasharray="3 3"/>'
                f'<text class="res" x="{px(x) + 3:.1f}" y="{PAD_T + 10}">{int(m["resolution"])} px</text>'
            )
        previous = m.get("resolution")
    for i, (key, label, colour) in enumerate(LOSS_SERIES):
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(float(m[key])):.1f}"
            for j, (m, x) in enumerate(zip(points, xs, strict=True))
        )
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        lx = PAD_L + 10 + i * 110
        parts.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{PAD_T - 10}" y2="{PAD_T - 10}" stroke="{colour}" '
            'stroke-width="2"/>'
            f'<text x="{lx + 22}" y="{PAD_T - 6}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def fd_points(lines: list[dict]) -> list[dict]:
    """The Fréchet distance measurements among metrics lines, one per images seen (the last), in order."""
    by_seen = {int(m["images_seen"]): m for m in lines if "fd" in m and "images_seen" in m}
    return [by_seen[k] for k in sorted(by_seen)]


def _stage_starts(points: list[dict]) -> dict[int, int]:
    """Resolution (px) -> images seen when its stage began, for every resolution measured."""
    starts: dict[int, int] = {}
    for i, m in enumerate(points):
        # lines record where their stage began; else the first point at a new resolution stands for it
        starts.setdefault(int(m["resolution"]), int(m.get("stage_start", m["images_seen"] if i else 0)))
    return starts


def fd_chart(points: list[dict]) -> Markup:
    """Fréchet distance against images seen, the real-versus-real baseline dashed, stages marked."""
    if not points:
        return Markup('<p class="muted">No Fréchet distance has been measured yet.</p>')
    xs = [int(m["images_seen"]) for m in points]
    values = [float(m["fd"]) for m in points] + [
        float(m["baseline"]) for m in points if m.get("baseline") is not None
    ]
    x1 = max(max(xs), 1)
    y1 = max(max(values) * 1.1, 1e-9)  # distances start at 0

    def px(x: float) -> float:
        return PAD_L + x / x1 * (PLOT_W - PAD_L - PAD_R)

    def py(y: float) -> float:
        return PAD_T + (y1 - y) / y1 * (PLOT_H - PAD_T - PAD_B)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PLOT_W} {PLOT_H}" class="chart fd-chart" '
        'role="img" aria-label="Fréchet distance per checkpoint, with the real-versus-real baseline">',
        "<style>text{font:11px system-ui,sans-serif;fill:#222}.res{fill:#888}</style>",
    ]
    for y in _ticks(0.0, y1):
        yy = f"{py(y):.1f}"
        parts.append(f'<line x1="{PAD_L}" x2="{PLOT_W - PAD_R}" y1="{yy}" y2="{yy}" stroke="#eee"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    digits = 0 if x1 >= 10_000 else 1  # a short run's ticks would otherwise all round to the same kimg
    for x in _ticks(0.0, x1):
        label = f"{x / 1000:,.{digits}f}"
        parts.append(f'<text x="{px(x):.1f}" y="{PLOT_H - PAD_B + 16}" text-anchor="middle">{label}</text>')
    parts.append(
        f'<text x="{(PAD_L + PLOT_W) / 2:.0f}" y="{PLOT_H - 4}" text-anchor="middle">'
        "thousands of images</text>"
    )
    starts = _stage_starts(points)
    for resolution, x in starts.items():  # a dotted line where each later resolution's fade-in began
        if x <= 0:
            continue
        parts.append(
            f'<line class="stage" x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{PAD_T}" y2="{PLOT_H - PAD_B}" '
            'stroke="#bbb" stroke-dasharray="1 3"/>'
            f'<text class="res" x="{px(x) + 3:.1f}" y="{PAD_T + 10}">{resolution} px</text>'
        )
    # The baseline belongs to a resolution: one dashed segment per resolution, across its points.
    segments: dict[int, list[tuple[int, float]]] = {}
    for m, x in zip(points, xs, strict=True):
        if m.get("baseline") is not None:
            segments.setdefault(int(m["resolution"]), []).append((x, float(m["baseline"])))
    for resolution, seg in segments.items():
        # From its stage's start to its last point.
        left, (right, base) = min(starts[resolution], seg[0][0]), seg[-1]
        parts.append(
            f'<path class="baseline" d="M{px(left):.1f},{py(base):.1f} H{px(right):.1f}" fill="none" '
            f'stroke="#b5452f" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>real vs real at {resolution} px: {base:.4g}</title></path>"
        )
    path = " ".join(
        f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(float(m['fd'])):.1f}"
        for j, (m, x) in enumerate(zip(points, xs, strict=True))
    )
    parts.append(f'<path class="fd" d="{path}" fill="none" stroke="#3b6ea5" stroke-width="1.5"/>')
    for m, x in zip(points, xs, strict=True):
        base = "" if m.get("baseline") is None else f", real vs real {float(m['baseline']):.4g}"
        parts.append(
            f'<circle cx="{px(x):.1f}" cy="{py(float(m["fd"])):.1f}" r="3.5" fill="#3b6ea5">'
            f"<title>{x:,} images, {int(m['resolution'])} px: {float(m['fd']):.4g}{base}</title></circle>"
        )
    legend = (
        ("generated vs real", "#3b6ea5", ""),
        ("real vs real (baseline)", "#b5452f", ' stroke-dasharray="6 4"'),
    )
    for i, (label, colour, dash) in enumerate(legend):
        lx = PAD_L + 10 + i * 150
        parts.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{PAD_T - 10}" y2="{PAD_T - 10}" stroke="{colour}" '
            f'stroke-width="2"{dash}/><text x="{lx + 22}" y="{PAD_T - 6}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def fid_by_n_chart(points: list[list[float]], infinity: float, slope: float, *, metric: str) -> Markup:
    """FID_n against 1/n with its least-squares line FID∞ + slope / n (Chong & Forsyth 2020)."""
    x1 = 1.08 / min(n for n, _ in points)  # 1/n of the smallest subset, with a margin
    ys = [v for _, v in points] + [infinity, 0.0]
    y0, top = min(ys), max(ys)
    span = (top - y0) * 1.1 if top > y0 else 1.0

    def px(x: float) -> float:
        return PAD_L + x / x1 * (PLOT_W - PAD_L - PAD_R)

    def py(y: float) -> float:
        return PAD_T + (y0 + span - y) / span * (PLOT_H - PAD_T - PAD_B)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PLOT_W} {PLOT_H}" class="chart fid-by-n" '
        f'role="img" aria-label="{escape(metric)} against 1/n, extrapolated to 1/n = 0">',
        "<style>text{font:11px system-ui,sans-serif;fill:#222}</style>",
    ]
    for y in _ticks(y0, y0 + span):
        yy = f"{py(y):.1f}"
        parts.append(f'<line x1="{PAD_L}" x2="{PLOT_W - PAD_R}" y1="{yy}" y2="{yy}" stroke="#eee"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    for x in _ticks(0.0, x1):
        parts.append(f'<text x="{px(x):.1f}" y="{PLOT_H - PAD_B + 16}" text-anchor="middle">{x:.3g}</text>')
    parts.append(
        f'<text x="{(PAD_L + PLOT_W) / 2:.0f}" y="{PLOT_H - 4}" text-anchor="middle">'
        "1 / n (synthetic images)</text>"
    )
    end = x1 / 1.08
    line = f"M{px(0):.1f},{py(infinity):.1f} L{px(end):.1f},{py(infinity + slope * end):.1f}"
    parts.append(
        f'<path class="fit" d="{line}" stroke="#c0504d" stroke-dasharray="4 3" fill="none"/>'
        f'<circle cx="{px(0):.1f}" cy="{py(infinity):.1f}" r="4" fill="#c0504d">'
        f"<title>infinitely many images: {infinity:.4g}</title></circle>"
    )
    for n, v in points:
        parts.append(
            f'<circle class="point" cx="{px(1 / n):.1f}" cy="{py(v):.1f}" r="3" fill="#3b6ea5">'
            f"<title>n = {int(n)}: {v:.4g}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
