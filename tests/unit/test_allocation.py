"""Case draws and reader orders: reproducible per seed, balanced in blocks, stratified on request."""

from __future__ import annotations

import pytest

from app.domain.allocation import (
    Candidate,
    block_shape,
    block_shapes,
    draw_cases,
    reader_order,
    split_counts,
    with_repeats,
)
from app.domain.errors import Invalid


def pool(kind: str, n: int, start: int = 0, with_finding_every: int = 3) -> list[Candidate]:
    return [
        Candidate(start + i, kind, ("Effusion",) if i % with_finding_every == 0 else ()) for i in range(n)
    ]


REAL, SYN = pool("real", 40), pool("synthetic", 40, start=100)


def test_draw_is_reproducible_and_respects_the_ratio():
    a = draw_cases(REAL, SYN, n_cases=20, ratio_real=1, ratio_synthetic=3, practice=4, stratify=None, seed=5)
    b = draw_cases(REAL, SYN, n_cases=20, ratio_real=1, ratio_synthetic=3, practice=4, stratify=None, seed=5)
    c = draw_cases(REAL, SYN, n_cases=20, ratio_real=1, ratio_synthetic=3, practice=4, stratify=None, seed=6)
    assert a == b and a != c
    assert sum(x.truth == "real" for x in a.main) == 5 and sum(x.truth == "synthetic" for x in a.main) == 15
    assert {x.image_id for x in a.main}.isdisjoint({x.image_id for x in a.practice})
    assert sorted(x.truth for x in a.practice) == ["real", "real", "synthetic", "synthetic"]


def test_stratified_draw_balances_the_finding_in_each_class():
    d = draw_cases(
        REAL, SYN, n_cases=20, ratio_real=1, ratio_synthetic=1, practice=0, stratify="Effusion", seed=1
    )
    for truth in ("real", "synthetic"):
        chosen = [x for x in d.main if x.truth == truth]
        assert sum("Effusion" in x.labels for x in chosen) == 5 and len(chosen) == 10


def test_draw_refuses_more_than_the_sets_hold():
    with pytest.raises(Invalid, match="real images"):
        draw_cases(
            REAL[:3], SYN, n_cases=10, ratio_real=1, ratio_synthetic=1, practice=0, stratify=None, seed=0
        )
    with pytest.raises(Invalid, match="Stratifying by Effusion"):
        draw_cases(
            pool("real", 10, with_finding_every=10),
            SYN,
            n_cases=16,
            ratio_real=1,
            ratio_synthetic=1,
            practice=0,
            stratify="Effusion",
            seed=0,
        )


def test_split_counts_and_block_shape():
    assert split_counts(10, 1, 1) == (5, 5)
    assert split_counts(7, 2, 1) == (5, 2)
    assert split_counts(6, 0, 1) == (0, 6)
    assert block_shape(1, 1) == (2, 2)
    assert block_shape(2, 4) == (2, 4)
    assert block_shape(0, 1) == (0, 4)


def test_reader_order_is_a_reproducible_permutation_per_reader():
    cases = [(i, "real" if i < 10 else "synthetic") for i in range(20)]
    a = reader_order(cases, seed=3, reader_id=1, ratio_real=1, ratio_synthetic=1)
    assert sorted(a) == list(range(20))
    assert a == reader_order(list(reversed(cases)), seed=3, reader_id=1, ratio_real=1, ratio_synthetic=1)
    assert a != reader_order(cases, seed=3, reader_id=2, ratio_real=1, ratio_synthetic=1)
    assert a != reader_order(cases, seed=4, reader_id=1, ratio_real=1, ratio_synthetic=1)


def test_reader_order_is_balanced_in_blocks_of_varying_size():
    truth = {i: ("real" if i < 12 else "synthetic") for i in range(24)}
    first_four_balanced = 0
    for reader_id in range(60):
        order = reader_order(
            list(truth.items()), seed=11, reader_id=reader_id, ratio_real=1, ratio_synthetic=1
        )
        # Blocks of 4, 6 or 8 each hold the ratio, so real and synthetic counts meet at least every 8 cases.
        balance = [i + 1 for i in range(24) if sum(truth[c] == "real" for c in order[: i + 1]) * 2 == i + 1]
        assert balance[-1] == 24 and max(b - a for a, b in zip([0, *balance], balance, strict=False)) <= 8
        first_four_balanced += [truth[c] for c in order[:4]].count("real") == 2
    # With fixed blocks of 4 the first four cases were always 2:2, so the fourth was known from the others.
    assert first_four_balanced < 55


def test_block_shapes_vary_around_the_ratio():
    assert block_shapes(1, 1) == [(2, 2), (3, 3), (4, 4)]
    assert block_shapes(1, 2) == [(2, 4), (3, 6), (4, 8)]
    assert block_shapes(2, 4) == [(2, 4), (3, 6), (4, 8)]


def test_positions_are_spread_across_readers():
    # Over many readers each case appears early and late about equally often (no case always first).
    cases = [(i, "real" if i % 2 else "synthetic") for i in range(8)]
    first = [reader_order(cases, seed=0, reader_id=r, ratio_real=1, ratio_synthetic=1)[0] for r in range(400)]
    counts = [first.count(c) for c in range(8)]
    assert min(counts) > 25 and max(counts) < 80


@pytest.mark.parametrize(("n", "percent", "gap"), [(20, 10, 5), (40, 25, 10), (100, 10, 30), (12, 50, 3)])
def test_repeats_come_back_after_the_gap(n: int, percent: int, gap: int) -> None:
    order = list(range(1000, 1000 + n))
    out = with_repeats(order, percent=percent, gap=gap, seed=5, reader_id=7)
    assert [c for c, p in out if p == 1] == order  # the first showings keep their order
    repeats = [c for c, p in out if p == 2]
    assert len(repeats) == len(set(repeats)) == max(1, round(n * percent / 100))
    for case_id in repeats:
        first, second = [i for i, (c, _) in enumerate(out) if c == case_id]
        assert second - first - 1 >= gap
    assert with_repeats(order, percent=percent, gap=gap, seed=5, reader_id=7) == out
    assert with_repeats(order, percent=percent, gap=gap, seed=5, reader_id=8) != out


def test_no_repeats_without_a_percent_or_room() -> None:
    assert with_repeats([1, 2, 3], percent=0, gap=1, seed=0, reader_id=0) == [(1, 1), (2, 1), (3, 1)]
    assert with_repeats([1, 2, 3], percent=50, gap=5, seed=0, reader_id=0) == [(1, 1), (2, 1), (3, 1)]
