"""The one progress report every long computation of app.ml gives (app.ml.progress)."""

from __future__ import annotations

from app.ml.progress import Progress


def test_fraction_is_done_over_total_kept_within_zero_and_one():
    assert Progress(3, 12).fraction == 0.25
    assert Progress(5, 0).fraction == 0.0  # a total not known yet
    assert Progress(13, 12).fraction == 1.0 and Progress(-1, 12).fraction == 0.0


def test_a_report_placed_within_a_larger_whole():
    part = Progress(1, 4, "epoch 1 / 4").within(0.5, 0.9)
    assert abs(part.fraction - 0.6) < 1e-12 and part.note == "epoch 1 / 4"
    assert Progress(4, 4, "x").within(1 / 3, 2 / 3, "synthetic: x").note == "synthetic: x"
    assert abs(Progress(4, 4).within(1 / 3, 2 / 3).fraction - 2 / 3) < 1e-12
