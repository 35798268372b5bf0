"""The study-level analysis in app.domain on hand-made readings: scale, eligibility and the edge cases that
must give a dash on the page, never an error."""

from __future__ import annotations

import pytest

from app.domain.agreement import reader_agreement
from app.domain.analysis import Read
from app.domain.ratings import rating, study_mrmc, study_table
from app.domain.realism import realism


def _rows(readers=(1, 2), cases=8, *, right=lambda j, k: True, confidence=5):
    out = []
    for j in readers:
        for k in range(cases):
            truth = "synthetic" if k % 2 else "real"
            wrong = "real" if truth == "synthetic" else "synthetic"
            out.append(
                Read(
                    reader=f"R-{j}",
                    case=f"c{k:03d}",
                    truth=truth,
                    verdict=truth if right(j, k) else wrong,
                    confidence=confidence,
                    set_name="gan-a" if k % 4 == 1 else "gan-b",
                    findings=frozenset(),
                    labels=None,
                    position=k,
                    duration_ms=1000 + k,
                )
            )
    return out


def test_the_ten_point_scale() -> None:
    assert [rating("real", c) for c in (5, 4, 3, 2, 1)] == [1, 2, 3, 4, 5]
    assert [rating("synthetic", c) for c in (1, 2, 3, 4, 5)] == [6, 7, 8, 9, 10]
    with pytest.raises(ValueError):
        rating("real", 0)


def test_readers_without_two_of_each_class_are_left_out_by_name() -> None:
    rows = _rows() + [r for r in _rows(readers=(3,), cases=3)]  # cases 0, 1, 2 -> one synthetic
    design = study_table(rows)
    assert design.left_out == ["R-3"] and design.table.readers == ["R-1", "R-2"]
    assert study_table([]).reason.startswith("no reader has yet read")


def test_perfect_readers_give_no_interval_instead_of_an_error() -> None:
    m = study_mrmc(_rows())
    level = m.auc.analyses["RRRC"].levels[0]
    assert level.estimate == 1.0 and level.se is None and level.p is None
    assert m.generators is not None and m.generators.modalities == ["gan-a", "gan-b"]


def test_differences_without_variance_have_no_interval() -> None:
    m = study_mrmc(_rows())  # perfect readers on both generators
    (d,) = m.generators.analyses["RRRC"].differences
    assert d.se is None and d.low is None and d.p is None


def test_position_uses_fifths_of_each_readers_own_readings() -> None:
    """A strong reader who stopped early and a weak one who finished: no fatigue trend may appear."""
    strong = [r for r in _rows(readers=(1,), cases=40) if r.position < 10]
    weak = _rows(readers=(2,), cases=40, right=lambda j, k: k % 2 == 0)
    bins = realism(strong + weak, []).position
    assert [b.accuracy.n for b in bins] == [10, 10, 10, 10, 10]
    assert len({b.accuracy.k for b in bins}) == 1  # every fifth: 2 of the strong reader's + 4 of the weak's


def test_one_reader_gets_the_fixed_reader_analysis_only() -> None:
    m = study_mrmc(_rows(readers=(1,), right=lambda j, k: k % 3 != 0))
    assert list(m.auc.analyses) == ["FRRC"] and m.auc.components.var_r is None
    assert m.auc.analyses["FRRC"].levels[0].se > 0


def test_generators_share_the_real_cases() -> None:
    rows = _rows(readers=(1, 2, 3), cases=24, right=lambda j, k: (j * 5 + k * 3) % 7 != 0)
    table = study_table(rows, by_set=True).table
    real = sum(1 for r in rows if r.truth == "real") // 3
    # Each generator's modality holds every real case and only its own synthetic cases.
    for t, name in enumerate(table.modalities):
        cases = {table.cases[k] for k in table.k[table.t == t]}
        synthetic = {r.case for r in rows if r.truth == "synthetic" and r.set_name == name}
        assert len(cases) == real + len(synthetic)
    m = study_mrmc(rows)
    assert m.generators.covariance == "delong"  # nested, not factorial
    assert m.generators.components.cov1 > 0  # same reader, other generator: shared real cases


def test_agreement_with_nobody_and_with_everybody() -> None:
    empty = reader_agreement([])
    assert empty.verdicts.value is None and empty.fleiss is None and empty.pairs == []
    full = reader_agreement(_rows(readers=(1, 2, 3)))
    assert full.verdicts.value == 1.0 and full.fleiss == 1.0 and full.fleiss_cases == 8
    assert [(p.first, p.second, p.n) for p in full.pairs] == [
        ("R-1", "R-2", 8),
        ("R-1", "R-3", 8),
        ("R-2", "R-3", 8),
    ]
