"""Viewing conditions: how a reader saw each case (screen, window, zoom, time at 1:1, browser).

A reader who judges a 1024 px film in a 900 px window never sees its pixels; a realism figure is read
differently when half the readings were made on a laptop at fit. The browser reports what it knows at
submit (app/web/routes/readings.py reads the form fields, static/js/conditions.js fills them); the server
adds the browser from the request. Sizes are CSS pixels; the zoom is device pixels per image pixel, so 1.0
is the film's own resolution on the screen ("1:1") whatever the device pixel ratio.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from app.domain.errors import Invalid

MAX_CSS_PX = 32_768  # no screen or window is larger; anything beyond is a forged form
MAX_DPR = 16.0
MAX_ZOOM = 64.0
MAX_BROWSER = 200


@dataclass(frozen=True)
class Viewing:
    """What the browser reported at submit; any part may be missing (None)."""

    screen_w: int | None = None
    screen_h: int | None = None
    window_w: int | None = None
    window_h: int | None = None
    device_pixel_ratio: float | None = None
    zoom_at_submit: float | None = None
    one_to_one_reached: bool | None = None
    one_to_one_ms: int | None = None
    browser: str | None = None

    def check(self, max_ms: int) -> None:
        """Invalid (naming the field) for a value no browser reports."""
        for name in ("screen_w", "screen_h", "window_w", "window_h"):
            v = getattr(self, name)
            if v is not None and not 1 <= v <= MAX_CSS_PX:
                raise Invalid(f"{name} must be from 1 to {MAX_CSS_PX} CSS pixels.")
        if self.device_pixel_ratio is not None and not 0.1 <= self.device_pixel_ratio <= MAX_DPR:
            raise Invalid(f"device_pixel_ratio must be from 0.1 to {MAX_DPR}.")
        if self.zoom_at_submit is not None and not 0 < self.zoom_at_submit <= MAX_ZOOM:
            raise Invalid(f"zoom_at_submit must be above 0 and at most {MAX_ZOOM}.")
        if self.one_to_one_ms is not None and not 0 <= self.one_to_one_ms <= max_ms:
            raise Invalid(f"one_to_one_ms must be from 0 to {max_ms}.")

    def columns(self) -> dict[str, Any]:
        """The reading columns these conditions fill."""
        return {
            "screen_w": self.screen_w,
            "screen_h": self.screen_h,
            "window_w": self.window_w,
            "window_h": self.window_h,
            "device_pixel_ratio": self.device_pixel_ratio,
            "zoom_at_submit": self.zoom_at_submit,
            "one_to_one_reached": self.one_to_one_reached,
            "one_to_one_ms": self.one_to_one_ms,
            "browser": (self.browser or "")[:MAX_BROWSER] or None,
        }


# Order matters: Edge and Opera carry "Chrome" too, Chrome carries "Safari".
_FAMILIES = [
    ("Edge", r"Edg(?:e|A|iOS)?/(\d+)"),
    ("Opera", r"OPR/(\d+)"),
    ("Firefox", r"Firefox/(\d+)"),
    ("Chrome", r"(?:Chrome|CriOS|HeadlessChrome)/(\d+)"),
    ("Safari", r"Version/(\d+).*Safari/"),
]


def browser_family(user_agent: str | None) -> str:
    """A browser's family and major version from its User-Agent ("Chrome 156"), or "other"."""
    for name, pattern in _FAMILIES:
        m = re.search(pattern, user_agent or "")
        if m:
            return f"{name} {m.group(1)}"
    return "other"


@dataclass(frozen=True)
class ViewingSummary:
    """The results page's summary of how a study's readings were viewed."""

    readings: int  # latest, non-practice readings
    reported: int  # ... of which the browser reported its conditions
    window_median: tuple[int, int] | None  # (width, height), CSS px
    window_smallest: tuple[int, int] | None  # the reading with the smallest window area
    below_minimum: int  # readings in a window smaller than the study's minimum (0 without one)
    dpr: list[tuple[float, int]]  # device pixel ratio -> readings, most common first
    reached_one_to_one: int  # readings whose image was shown at 1:1 or larger at some point
    one_to_one_median_s: float | None  # median seconds at 1:1 or larger, over readings that reached it
    zoom_median: float | None
    browsers: list[tuple[str, int]]  # "Chrome 156" -> readings, most common first


def _median_of(rows: list[Any], name: str) -> float:
    return statistics.median(getattr(r, name) for r in rows)


def summarise(rows: list[Any], minimum: tuple[int | None, int | None] = (None, None)) -> ViewingSummary:
    """Summarise readings' viewing columns (objects with the Viewing fields' names)."""
    seen = [r for r in rows if r.window_w is not None and r.window_h is not None]
    reached = [r for r in rows if r.one_to_one_reached]
    times = [r.one_to_one_ms / 1000 for r in reached if r.one_to_one_ms is not None]
    zooms = [r.zoom_at_submit for r in rows if r.zoom_at_submit is not None]
    min_w, min_h = minimum
    median = (round(_median_of(seen, "window_w")), round(_median_of(seen, "window_h"))) if seen else None
    below = sum(1 for r in seen if (min_w and r.window_w < min_w) or (min_h and r.window_h < min_h))
    smallest = min(seen, key=lambda r: (r.window_w * r.window_h, r.window_w), default=None)
    dprs = Counter(round(r.device_pixel_ratio, 2) for r in rows if r.device_pixel_ratio is not None)
    browsers = Counter(browser_family(r.browser) for r in rows if r.browser)
    return ViewingSummary(
        readings=len(rows),
        reported=len(seen),
        window_median=median,
        window_smallest=(smallest.window_w, smallest.window_h) if smallest else None,
        below_minimum=below,
        dpr=dprs.most_common(),
        reached_one_to_one=len(reached),
        one_to_one_median_s=statistics.median(times) if times else None,
        zoom_median=statistics.median(zooms) if zooms else None,
        browsers=browsers.most_common(),
    )
