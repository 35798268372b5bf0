"""Tests for app.domain.statistics against statsmodels/scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from app.domain.statistics import (
    auc_from_scores,
    binomial_p,
    cohen_kappa,
    finding_agreement,
    fleiss_kappa,
    fleiss_kappa_from_ratings,
    proportion,
    rating_score,
    reader_metrics,
    wilson_interval,
)

GRID = [(k, n) for n in (1, 2, 5, 10, 37, 100, 1000) for k in sorted({0, 1, n // 3, n // 2, n - 1, n})]


# --- proportions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
@pytest.mark.parametrize(("k", "n"), GRID)
def test_wilson_matches_statsmodels(k: int, n: int, confidence: float) -> None:
    low, high = wilson_interval(k, n, confidence=confidence)
    ref_low, ref_high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_edges_are_exact() -> None:
    assert wilson_interval(0, 20)[0] == 0.0
    assert wilson_interval(20, 20)[1] == 1.0
    # Narrower confidence gives a narrower interval.
    lo90, hi90 = wilson_interval(7, 20, confidence=0.9)
    lo95, hi95 = wilson_interval(7, 20)
    assert lo95 < lo90 < hi90 < hi95


def test_wilson_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    with pytest.raises(ValueError):
        wilson_interval(-1, 4)
    with pytest.raises(ValueError):
        wilson_interval(1, 4, confidence=1.0)


def test_proportion() -> None:
    p = proportion(3, 12)
    assert (p.k, p.n, p.value) == (3, 12, 0.25)
    assert (p.low, p.high) == wilson_interval(3, 12)
    empty = proportion(0, 0)
    assert (empty.value, empty.low, empty.high) == (None, None, None)


def test_binomial_p() -> None:
    # Two-sided exact test of 8/10 against 1/2: 2 * (C(10,8) + C(10,9) + C(10,10)) / 2^10 = 112 / 1024.
    assert binomial_p(8, 10) == pytest.approx(0.109375, abs=1e-12)
    assert binomial_p(5, 10) == pytest.approx(1.0)
    assert binomial_p(0, 0) is None
    for k, n in GRID:
        assert binomial_p(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-12)
    assert binomial_p(3, 20, p=0.3) == pytest.approx(stats.binomtest(3, 20, 0.3).pvalue, rel=1e-12)


# --- reader metrics and AUC --------------------------------------------------------------------------


def test_rating_score() -> None:
    assert rating_score(True, 5) == 5
    assert rating_score(False, 5) == -5
    assert rating_score(False, 1) < rating_score(True, 1)
    with pytest.raises(ValueError):
        rating_score(True, 0)


def test_reader_metrics_hand_example() -> None:
    # 6 synthetic, 4 real images.
    truth = [True, True, True, True, True, True, False, False, False, False]
    called = [True, True, True, False, False, True, False, True, False, False]
    conf = [5, 3, 2, 1, 4, 2, 5, 1, 3, 2]
    m = reader_metrics(truth, called, conf)
    # Synthetic called synthetic: items 0,1,2,5 -> 4/6. Real called real: items 6,8,9 -> 3/4.
    assert (m.sensitivity.k, m.sensitivity.n) == (4, 6)
    assert (m.specificity.k, m.specificity.n) == (3, 4)
    assert (m.accuracy.k, m.accuracy.n) == (7, 10)
    assert m.n == 10
    assert m.accuracy.value == pytest.approx(0.7)
    assert m.p_value == pytest.approx(binomial_p(7, 10))
    # Scores: synthetic +5 +3 +2 -1 -4 +2; real -5 +1 -3 -2. Count wins of each synthetic over the 4 reals.
    # +5: 4, +3: 4, +2: 4, -1: 3 (beats -5,-3,-2), -4: 1 (beats -5), +2: 4 -> 20 of 24 pairs.
    assert m.auc == pytest.approx(20 / 24)
    a, n_pos, n_neg = 20 / 24, 6, 4
    q1, q2 = a / (2 - a), 2 * a**2 / (1 + a)
    se = math.sqrt((a * (1 - a) + (n_pos - 1) * (q1 - a**2) + (n_neg - 1) * (q2 - a**2)) / (n_pos * n_neg))
    assert m.auc_low == pytest.approx(max(0.0, a - 1.959963984540054 * se))
    assert m.auc_high == pytest.approx(min(1.0, a + 1.959963984540054 * se))
    assert m.auc_low < m.auc < m.auc_high


def test_reader_metrics_without_confidence_uses_calls() -> None:
    truth = [True, True, False, False]
    called = [True, False, False, False]
    m = reader_metrics(truth, called)
    # Binary scores: AUC equals (sensitivity + specificity) / 2.
    assert m.auc == pytest.approx((0.5 + 1.0) / 2)


def test_reader_metrics_degenerate() -> None:
    empty = reader_metrics([], [])
    assert empty.n == 0
    assert empty.accuracy.value is None and empty.p_value is None
    assert empty.auc is None and empty.auc_low is None and empty.auc_high is None
    only_synthetic = reader_metrics([True, True, True], [True, False, True], [3, 2, 1])
    assert only_synthetic.sensitivity.value == pytest.approx(2 / 3)
    assert only_synthetic.specificity.value is None
    assert only_synthetic.auc is None and only_synthetic.auc_low is None
    perfect = reader_metrics([True, False], [True, False], [5, 5])
    assert (perfect.auc, perfect.auc_low, perfect.auc_high) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        reader_metrics([True], [True, False])
    with pytest.raises(ValueError):
        reader_metrics([True, False], [True, False], [1])


def test_auc_matches_mannwhitney_with_ties() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(20):
        n = int(rng.integers(5, 200))
        truth = rng.random(n) < 0.4
        truth[0], truth[1] = True, False
        # Integer scores in -5..5 force many ties.
        scores = rng.integers(-5, 6, size=n) + truth * rng.integers(0, 3, size=n)
        u = stats.mannwhitneyu(scores[truth], scores[~truth], alternative="two-sided").statistic
        expected = u / (truth.sum() * (~truth).sum())
        assert auc_from_scores(truth.tolist(), scores.tolist()) == pytest.approx(expected, abs=1e-12)


def test_auc_edge_cases() -> None:
    assert auc_from_scores([True, True, False, False], [3, 2, 1, 0]) == 1.0
    assert auc_from_scores([True, True, False, False], [0, 1, 2, 3]) == 0.0
    assert auc_from_scores([True, False], [1, 1]) == 0.5
    assert auc_from_scores([True, True], [1, 2]) is None
    assert auc_from_scores([], []) is None
    with pytest.raises(ValueError):
        auc_from_scores([True, False], [1.0])
    with pytest.raises(ValueError):
        auc_from_scores([True, False], [1.0, float("nan")])


# --- agreement ---------------------------------------------------------------------------------------


def test_cohen_kappa_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    cats = ["real", "synthetic", "unsure"]
    for _ in range(20):
        n = int(rng.integers(10, 300))
        a = rng.integers(0, 3, size=n)
        # b copies a with some probability so kappa is spread over a range of values.
        b = np.where(rng.random(n) < rng.random(), a, rng.integers(0, 3, size=n))
        table = np.zeros((3, 3))
        np.add.at(table, (a, b), 1)
        expected = sm_cohens_kappa(table, return_results=False)
        got = cohen_kappa([cats[i] for i in a], [cats[i] for i in b])
        assert got == pytest.approx(expected, abs=1e-12)


def test_cohen_kappa_hand_and_degenerate() -> None:
    # 2x2 table [[20, 5], [10, 15]]: po = 0.7, pe = (25*30 + 25*20) / 50^2 = 0.5, kappa = 0.4.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None
    assert cohen_kappa([1, 2], [1, 2]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])


def test_fleiss_kappa_matches_statsmodels() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        n_items, n_cats, m = int(rng.integers(2, 40)), int(rng.integers(2, 6)), int(rng.integers(2, 9))
        probs = rng.dirichlet(np.ones(n_cats), size=n_items)  # (items, cats)
        table = np.stack([rng.multinomial(m, p) for p in probs])  # (items, cats)
        assert fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table), abs=1e-12)


def test_fleiss_kappa_textbook_example() -> None:
    # Fleiss (1971) example as tabulated on Wikipedia: 10 items, 14 raters, 5 categories, kappa ~ 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_degenerate() -> None:
    assert fleiss_kappa(np.zeros((0, 3))) is None
    assert fleiss_kappa(np.array([[3, 0], [3, 0]])) is None  # one category only
    assert fleiss_kappa(np.array([[1, 0], [0, 1]])) is None  # one rater per item
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, -1], [1, 0]]))
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([1, 2]))


def test_fleiss_kappa_from_ratings() -> None:
    ratings = {
        "img1": {"r1": "real", "r2": "real", "r3": "synthetic"},
        "img2": {"r1": "synthetic", "r2": "synthetic", "r3": "synthetic"},
        "img3": {"r1": "real", "r2": "synthetic", "r3": "real"},
        "img4": {"r1": "real", "r2": "real", "r3": "real"},
        "img5": {"r1": "real", "r2": "synthetic"},  # ignored: 2 raters, not the modal 3
        "img6": {"r1": "synthetic"},  # ignored: a single rater
    }
    # Columns (real, synthetic) for img1..img4.
    expected = sm_fleiss_kappa(np.array([[2, 1], [0, 3], [2, 1], [3, 0]]))
    assert fleiss_kappa_from_ratings(ratings) == pytest.approx(expected, abs=1e-12)
    assert fleiss_kappa_from_ratings({}) is None
    assert fleiss_kappa_from_ratings({"a": {"r1": 1, "r2": 1}, "b": {"r1": 1}}) is None
    assert fleiss_kappa_from_ratings({"a": {"r1": 1, "r2": 0}, "b": {"r1": 1, "r2": 1}}) is not None


def test_finding_agreement_hand_example() -> None:
    marked = [{"Effusion"}, {"Effusion", "Mass"}, set(), {"Mass"}, set()]
    labels = [{"Effusion"}, {"Effusion"}, {"Effusion"}, set(), {"Nodule"}]
    eff, mass, hernia = finding_agreement(["Effusion", "Mass", "Hernia"], marked, labels)

    # Effusion: marks T T F F F, labels T T T F F -> 4/5 agree; table [[2,0],[1,2]] (mark x label).
    assert (eff.finding, eff.n, eff.reader_positive, eff.label_positive, eff.both) == ("Effusion", 5, 2, 3, 2)
    assert (eff.agreement.k, eff.agreement.n) == (4, 5)
    po, pe = 4 / 5, (2 * 3 + 3 * 2) / 25
    assert eff.kappa == pytest.approx((po - pe) / (1 - pe))

    # Mass: marks F T F T F, labels all F -> 3/5 agree; the label never varies so kappa = 0.
    assert (mass.reader_positive, mass.label_positive, mass.both, mass.agreement.k) == (2, 0, 0, 3)
    assert mass.kappa == pytest.approx(0.0)

    # Hernia: nobody marked it and no label has it -> perfect agreement, kappa undefined.
    assert hernia.agreement.value == 1.0
    assert hernia.kappa is None

    assert finding_agreement([], marked, labels) == []
    with pytest.raises(ValueError):
        finding_agreement(["Mass"], marked, labels[:-1])
