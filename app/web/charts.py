"""Server-rendered SVG charts (no JavaScript, no chart library): reader accuracy with intervals."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from app.domain.results import StudyResults
from app.domain.statistics import Proportion

ROW_H, LEFT, WIDTH, TOP = 26, 240, 720, 30
MAX_LABEL = 34


def _x(value: float) -> float:
    return LEFT + value * (WIDTH - LEFT - 20)


def _row(y: float, label: str, p: Proportion, colour: str) -> str:
    label = label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"
    if p.value is None:
        return (
            f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>'
            f'<text x="{LEFT + 4}" y="{y + 4}" class="muted">no readings yet</text>'
        )
    lo, hi = p.low or 0.0, p.high or 0.0
    return (
        f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>'
        f'<line x1="{_x(lo):.1f}" x2="{_x(hi):.1f}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
        f'<circle cx="{_x(p.value):.1f}" cy="{y}" r="5" fill="{colour}">'
        f"<title>{escape(label)}: {100 * p.value:.1f} % ({p.k}/{p.n}), 95 % CI "
        f"{100 * lo:.1f}–{100 * hi:.1f} %</title></circle>"
    )


def accuracy_chart(res: StudyResults) -> Markup:
    """Accuracy per reader and pooled, with Wilson 95 % intervals and the 50 % chance line."""
    rows = [(r.reader.pseudonym + " · " + r.reader.name, r.metrics.accuracy, "#3b6ea5") for r in res.readers]
    rows.append(("Pooled", res.pooled.accuracy, "#b5452f"))
    height = TOP + ROW_H * len(rows) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" class="chart" role="img" '
        f'aria-label="Accuracy per reader with 95 % intervals">',
        "<style>text{font:12px system-ui,sans-serif;fill:#222}.muted{fill:#888}</style>",
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = _x(tick)
        dash = ' stroke-dasharray="4 3"' if tick == 0.5 else ""
        stroke = "#b5452f" if tick == 0.5 else "#ddd"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP - 12}" y2="{height - 24}" stroke="{stroke}"{dash}/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{int(tick * 100)} %</text>')
    parts.append(f'<text x="{_x(0.5) + 4:.1f}" y="{TOP - 16}">chance</text>')
    for i, (label, p, colour) in enumerate(rows):
        parts.append(_row(TOP + i * ROW_H, label, p, colour))
    parts.append("</svg>")
    return Markup("".join(parts))
