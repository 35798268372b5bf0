"""Viewing conditions: browser families from real User-Agents, the summary's counts and medians."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.domain.errors import Invalid
from app.domain.readings import UNREADABLE_LABELS
from app.domain.viewing import Viewing, browser_family, summarise
from app.persistence.models.reading import UNREADABLE_REASONS


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 "
            "Safari/537.36",
            "Chrome 156",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131",
        ),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox 133"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/18.2 Safari/605.1.15",
            "Safari 18",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 "
            "Safari/537.36",
            "Chrome 156",
        ),
        ("python-httpx/0.28.1", "other"),
        (None, "other"),
    ],
)
def test_browser_family(agent, family):
    assert browser_family(agent) == family


def _row(w=None, h=None, dpr=None, zoom=None, reached=None, ms=None, browser=None):
    return SimpleNamespace(
        window_w=w,
        window_h=h,
        device_pixel_ratio=dpr,
        zoom_at_submit=zoom,
        one_to_one_reached=reached,
        one_to_one_ms=ms,
        browser=browser,
    )


def test_summary_counts_medians_and_the_minimum():
    rows = [
        _row(1440, 900, 2, 1.5, True, 3000, "Firefox/133"),
        _row(1000, 700, 1, 0.8, False, 0, "Chrome/156"),
        _row(1920, 1080, 1, 2.0, True, 5000, "Chrome/156"),
        _row(),  # a reading stored before viewing conditions were recorded
    ]
    s = summarise(rows, (1200, None))
    assert (s.readings, s.reported) == (4, 3)
    assert s.window_median == (1440, 900) and s.window_smallest == (1000, 700)
    assert s.below_minimum == 1
    assert s.dpr == [(1, 2), (2, 1)]
    assert s.reached_one_to_one == 2 and s.one_to_one_median_s == 4.0  # over readings that reached 1:1
    assert s.zoom_median == 1.5
    assert s.browsers == [("Chrome 156", 2), ("Firefox 133", 1)]
    empty = summarise([])
    assert empty.window_median is None and empty.one_to_one_median_s is None and empty.below_minimum == 0


@pytest.mark.parametrize(
    ("viewing", "field"),
    [
        (Viewing(screen_w=0), "screen_w"),
        (Viewing(window_h=40_000), "window_h"),
        (Viewing(device_pixel_ratio=0.0), "device_pixel_ratio"),
        (Viewing(zoom_at_submit=-1.0), "zoom_at_submit"),
        (Viewing(one_to_one_ms=-1), "one_to_one_ms"),
    ],
)
def test_impossible_conditions_are_refused_by_name(viewing, field):
    with pytest.raises(Invalid, match=field):
        viewing.check(max_ms=1000)


def test_every_stored_reason_has_a_label():
    assert tuple(UNREADABLE_LABELS) == UNREADABLE_REASONS
