"""The Fréchet distance chart (app.web.charts): valid SVG with every point, the baseline and the stages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from app.web.charts import fd_chart, fd_points, fid_by_n_chart, loss_chart

SVG = "{http://www.w3.org/2000/svg}"
POINTS = [
    {"images_seen": 1000, "resolution": 4, "stage_start": 0, "fd": 40.0, "baseline": 2.0, "n": 64},
    {"images_seen": 2000, "resolution": 8, "stage_start": 1500, "fd": 25.5, "baseline": 3.0, "n": 64},
    {"images_seen": 3000, "resolution": 8, "stage_start": 1500, "fd": 12.25, "baseline": 3.0, "n": 64},
    {"images_seen": 4000, "resolution": 16, "stage_start": 3500, "fd": 9.0, "baseline": None, "n": 64},
]


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # raises on anything that is not well-formed XML


def test_fd_chart_is_valid_svg_with_a_marker_per_point() -> None:
    svg = _parse(fd_chart(POINTS))
    assert svg.tag == f"{SVG}svg"
    circles = svg.findall(f"{SVG}circle")
    titles = [c.find(f"{SVG}title").text for c in circles]
    assert len(circles) == 4
    assert titles[0].startswith("1,000 images, 4 px: 40") and "real vs real 2" in titles[0]
    assert titles[2].startswith("3,000 images, 8 px: 12.25") and "real vs real 3" in titles[2]
    # higher distances sit higher on the page (smaller y), and later points further right
    ys = [float(c.get("cy")) for c in circles]
    xs = [float(c.get("cx")) for c in circles]
    assert ys == sorted(ys) and xs == sorted(xs)
    assert len(svg.find(f"{SVG}path[@class='fd']").get("d").split()) == 4


def test_fd_chart_draws_the_baseline_dashed_per_resolution_and_marks_stages() -> None:
    svg = _parse(fd_chart(POINTS))
    baselines = svg.findall(f"{SVG}path[@class='baseline']")
    assert [b.find(f"{SVG}title").text for b in baselines] == [
        "real vs real at 4 px: 2",
        "real vs real at 8 px: 3",
    ]
    assert all(b.get("stroke-dasharray") for b in baselines)
    circles = svg.findall(f"{SVG}circle")
    # the 8 px baseline is level (H), at the height the value 3 has, and ends at the last 8 px point
    d = baselines[1].get("d")
    assert d.startswith("M") and " H" in d
    assert float(d.split(" H")[1]) == float(circles[2].get("cx"))
    stages = svg.findall(f"{SVG}line[@class='stage']")
    assert len(stages) == 2  # 8 px and 16 px began during the run; 4 px at 0 is the axis
    labels = [t.text for t in svg.findall(f"{SVG}text[@class='res']")]
    assert labels == ["8 px", "16 px"]
    x_8px = float(stages[0].get("x1"))
    assert float(circles[0].get("cx")) < x_8px < float(circles[1].get("cx"))


def test_fd_points_keep_the_last_measurement_per_images_seen() -> None:
    lines = [
        {"images_seen": 10, "d_loss": 1.0, "g_loss": 2.0, "kimg": 0.01},
        {"images_seen": 20, "fd": 5.0},
        {"images_seen": 10, "fd": 7.0},
        {"images_seen": 20, "fd": 4.0},  # a retry measured the same checkpoint again
    ]
    assert fd_points(lines) == [{"images_seen": 10, "fd": 7.0}, {"images_seen": 20, "fd": 4.0}]


def test_the_loss_chart_ignores_measurement_lines() -> None:
    losses = [
        {"images_seen": i * 100, "kimg": i / 10, "resolution": 4, "d_loss": -i, "g_loss": i}
        for i in range(1, 5)
    ]
    plain, mixed = str(loss_chart(losses)), str(loss_chart(losses + POINTS))
    assert plain == mixed and plain.count("<svg") == 1 and "Fréchet" not in plain
    assert str(fd_chart(fd_points(losses + POINTS))).count("<svg") == 1


def test_no_points_says_so() -> None:
    assert "No Fréchet distance" in fd_chart([])


def test_the_fid_by_n_chart_draws_each_subset_and_the_extrapolated_point() -> None:
    svg = str(fid_by_n_chart([[10, 5.0], [20, 4.0], [40, 3.5]], 3.0, 20.0, metric="FID"))
    root = _parse(svg)
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 4 and "infinitely many images: 3" in svg
    # the extrapolated point sits on the y axis (1/n = 0), left of every subset's point
    assert float(circles[0].get("cx")) < min(float(c.get("cx")) for c in circles[1:])
