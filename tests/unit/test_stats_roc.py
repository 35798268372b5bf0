"""Tests of app.stats.roc, app.stats.proportions and app.stats.readers against independent references.

References: scikit-learn's `roc_auc_score` and `roc_curve`; scipy's Mann-Whitney U (U / (m n) is the AUC
with ties counted half); DeLong, DeLong & Clarke-Pearson (1988), computed here by brute force over all
m x n pairs from the definition, as a check of the midrank method; the published CT example of Hanley &
McNeil (1982, Radiology 143:29, Table 1: AUC 0.893, SE 0.032); scipy.stats.norm for the z-test;
statsmodels' Wilson `proportion_confint`; scipy's `binomtest`, `fisher_exact` and `hypergeom`; the
two-sided mid-p of the R package contingencytables (Fagerland, Lydersen & Laake), whose test suite gives
0.04998656 for the table [[2, 36], [8, 30]].
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve
from statsmodels.stats.proportion import proportion_confint

from app.stats.proportions import Proportion, binomial_p, fisher_p, proportion, wilson_interval
from app.stats.readers import summarise
from app.stats.roc import auc, auc_with_ci, components, hanley_mcneil_variance, roc_points

# Hanley & McNeil (1982), Table 1: 109 CT images rated 1 (definitely normal) .. 5 (definitely abnormal).
HM_ABNORMAL = [3, 2, 2, 11, 33]  # n = 51
HM_NORMAL = [33, 6, 6, 11, 2]  # n = 58


def _random_scores(seed: int, *, m_low: int = 2, n_low: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(truth, scores) with m >= m_low positives, n >= n_low negatives and many tied scores."""
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(m_low, 40)), int(rng.integers(n_low, 40))
    levels = int(rng.integers(2, 12))
    pos = rng.integers(0, levels, size=m) + rng.integers(0, 3, size=m)  # shifted up: AUC above 0.5
    neg = rng.integers(0, levels, size=n)
    truth = np.r_[np.ones(m, dtype=bool), np.zeros(n, dtype=bool)]
    scores = np.r_[pos, neg].astype(float)
    order = rng.permutation(m + n)
    return truth[order], scores[order]


def _hanley_mcneil_data() -> tuple[np.ndarray, np.ndarray]:
    truth = np.r_[np.ones(51, dtype=bool), np.zeros(58, dtype=bool)]
    scores = np.r_[np.repeat(np.arange(1, 6), HM_ABNORMAL), np.repeat(np.arange(1, 6), HM_NORMAL)]
    return truth, scores.astype(float)


def _brute_force_delong(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUC, DeLong variance) from the definition, over all positive x negative pairs."""
    pos, neg = scores[truth], scores[~truth]
    m, n = pos.size, neg.size
    psi = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            psi[i, j] = 1.0 if pos[i] > neg[j] else 0.5 if pos[i] == neg[j] else 0.0
    v10 = psi.mean(axis=1)  # (m,)
    v01 = psi.mean(axis=0)  # (n,)
    return float(psi.mean()), float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)


# --- AUC ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_auc_matches_sklearn_and_mann_whitney(seed: int) -> None:
    truth, scores = _random_scores(seed, m_low=1, n_low=1)
    pos, neg = scores[truth], scores[~truth]
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    got = auc(truth, scores)
    assert got == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert got == pytest.approx(u / (pos.size * neg.size), abs=1e-12)


def test_auc_one_class_is_none() -> None:
    assert auc([True, True, True], [0.1, 0.5, 0.9]) is None
    assert auc([False, False], [0.1, 0.5]) is None
    assert auc([], []) is None


def test_auc_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        auc([True, False], [0.5])
    with pytest.raises(ValueError):
        auc([True, False], [0.5, float("nan")])


# --- DeLong components and variance --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_delong_variance_matches_brute_force(seed: int) -> None:
    truth, scores = _random_scores(seed)
    expected_auc, expected_var = _brute_force_delong(truth, scores)
    assert expected_var > 0.0
    result = auc_with_ci(truth, scores)
    assert result.value == pytest.approx(expected_auc, abs=1e-12)
    assert result.se**2 == pytest.approx(expected_var, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("seed", range(10))
def test_components_match_brute_force_structural_components(seed: int) -> None:
    truth, scores = _random_scores(seed)
    pos, neg = scores[truth], scores[~truth]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # (m, n)
    value, v10, v01 = components(truth, scores)
    np.testing.assert_allclose(v10, psi.mean(axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(v01, psi.mean(axis=0), rtol=0, atol=1e-12)
    assert value == pytest.approx(psi.mean(), abs=1e-12)


def test_components_one_class_is_none() -> None:
    assert components([True, True], [1.0, 2.0]) is None


def test_hanley_mcneil_1982_ct_example() -> None:
    truth, scores = _hanley_mcneil_data()
    value = auc(truth, scores)
    assert round(value, 3) == 0.893
    assert round(hanley_mcneil_variance(value, 51, 58) ** 0.5, 3) == 0.032
    assert value == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    # DeLong's SE on the same data, from the brute-force definition.
    delong_var = _brute_force_delong(truth, scores)[1]
    assert auc_with_ci(truth, scores).se ** 2 == pytest.approx(delong_var, rel=1e-9)


# --- auc_with_ci ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("seed", range(10))
def test_auc_ci_is_wald_interval_and_p_is_two_sided_z(seed: int, level: float) -> None:
    truth, scores = _random_scores(seed)
    result = auc_with_ci(truth, scores, level=level)
    z = stats.norm.ppf(0.5 + level / 2.0)
    assert result.low == pytest.approx(max(0.0, result.value - z * result.se), abs=1e-12)
    assert result.high == pytest.approx(min(1.0, result.value + z * result.se), abs=1e-12)
    z_chance = (result.value - 0.5) / result.se
    assert result.p_chance == pytest.approx(2.0 * stats.norm.cdf(-abs(z_chance)), rel=1e-9, abs=1e-300)
    assert result.positives == int(truth.sum()) and result.negatives == int((~truth).sum())


def test_auc_ci_is_clipped_to_unit_interval() -> None:
    truth = np.r_[np.ones(6, dtype=bool), np.zeros(6, dtype=bool)]
    scores = np.array([9, 8, 7, 6, 5, 2, 4, 3, 2, 1, 0, 0], dtype=float)  # one overlap: AUC near 1
    result = auc_with_ci(truth, scores)
    assert result.value + 1.96 * result.se > 1.0
    assert result.high == 1.0
    low_truth = ~truth  # the mirror image: AUC near 0
    mirrored = auc_with_ci(low_truth, scores)
    assert mirrored.value - 1.96 * mirrored.se < 0.0
    assert mirrored.low == 0.0


@pytest.mark.parametrize(("m", "n"), [(1, 1), (1, 5), (5, 1), (3, 4), (20, 20)])
def test_auc_ci_perfect_separation_is_not_degenerate(m: int, n: int) -> None:
    truth = np.r_[np.ones(m, dtype=bool), np.zeros(n, dtype=bool)]
    scores = np.r_[np.arange(m) + 100.0, np.arange(n)]
    result = auc_with_ci(truth, scores)
    assert result.value == 1.0
    assert result.se is not None and result.se > 0.0
    assert 0.0 <= result.low < result.value == result.high == 1.0
    # At 20 + 20 the z is about 87, so the p-value underflows to 0.0, as scipy's does.
    expected_p = 2.0 * stats.norm.sf((result.value - 0.5) / result.se)
    assert result.p_chance == pytest.approx(expected_p, rel=1e-9, abs=1e-300)
    assert 0.0 <= result.p_chance < 1.0


def test_auc_ci_one_class_is_all_none() -> None:
    result = auc_with_ci([True, True, True], [0.2, 0.4, 0.6])
    assert (result.value, result.se, result.low, result.high, result.p_chance) == (None,) * 5
    assert (result.positives, result.negatives) == (3, 0)


# --- ROC points -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(15))
def test_roc_points_run_from_origin_to_corner_monotonically(seed: int) -> None:
    truth, scores = _random_scores(seed, m_low=1, n_low=1)
    points = roc_points(truth, scores)
    fpr = np.array([p.fpr for p in points])
    tpr = np.array([p.tpr for p in points])
    thresholds = np.array([p.threshold for p in points])
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thresholds) < 0)
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(auc(truth, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_roc_points_match_sklearn_roc_curve(seed: int) -> None:
    truth, scores = _random_scores(seed, m_low=1, n_low=1)
    ref_fpr, ref_tpr, ref_thresholds = roc_curve(truth, scores, drop_intermediate=False)
    points = roc_points(truth, scores)
    np.testing.assert_allclose([p.fpr for p in points], ref_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose([p.tpr for p in points], ref_tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal([p.threshold for p in points][1:], ref_thresholds[1:])


def test_roc_points_one_class_is_empty() -> None:
    assert roc_points([False, False], [0.3, 0.7]) == []


# --- proportions ----------------------------------------------------------------------------------------

GRID = [(k, n) for n in (1, 2, 5, 10, 37, 100, 1000) for k in sorted({0, 1, n // 3, n // 2, n - 1, n})]


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize(("k", "n"), GRID)
def test_wilson_matches_statsmodels(k: int, n: int, confidence: float) -> None:
    low, high = wilson_interval(k, n, confidence=confidence)
    ref_low, ref_high = proportion_confint(k, n, alpha=1.0 - confidence, method="wilson")
    assert low == pytest.approx(ref_low, abs=1e-12)
    assert high == pytest.approx(ref_high, abs=1e-12)
    result = proportion(k, n, confidence=confidence)
    assert (result.value, result.low, result.high) == (k / n, low, high)


def test_proportion_of_nothing_is_none_and_wilson_refuses_it() -> None:
    assert proportion(0, 0) == Proportion(k=0, n=0, value=None, low=None, high=None)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


@pytest.mark.parametrize("p", [0.5, 0.2, 0.75])
@pytest.mark.parametrize(("k", "n"), GRID)
def test_binomial_p_matches_scipy(k: int, n: int, p: float) -> None:
    assert binomial_p(k, n, p=p) == pytest.approx(stats.binomtest(k, n, p=p).pvalue, rel=1e-12, abs=1e-300)


def test_binomial_p_of_nothing_is_none() -> None:
    assert binomial_p(0, 0) is None


def _tables(limit: int = 6):
    """Every 2 x 2 table (tp, fn, fp, tn) with cells 0..limit-1 and both classes non-empty."""
    for tp, fn, fp, tn in itertools.product(range(limit), repeat=4):
        if tp + fn > 0 and fp + tn > 0:
            yield tp, fn, fp, tn


def _null_probabilities(tp: int, fn: int, fp: int, tn: int) -> tuple[np.ndarray, float]:
    """Hypergeometric probabilities of every table with the observed margins, and of the observed one."""
    total, positives, called = tp + fn + fp + tn, tp + fn, tp + fp
    support = np.arange(max(0, called - (fp + tn)), min(called, positives) + 1)
    return stats.hypergeom.pmf(support, total, positives, called), float(
        stats.hypergeom.pmf(tp, total, positives, called)
    )


def test_fisher_exact_matches_scipy_on_small_tables() -> None:
    for tp, fn, fp, tn in _tables():
        expected = stats.fisher_exact([[tp, fn], [fp, tn]], alternative="two-sided").pvalue
        assert fisher_p(tp, fn, fp, tn, mid=False) == pytest.approx(expected, rel=1e-9, abs=1e-15), (
            tp,
            fn,
            fp,
            tn,
        )


def test_fisher_mid_p_subtracts_half_the_observed_probability_when_no_table_ties() -> None:
    checked = 0
    for tp, fn, fp, tn in _tables():
        probs, observed = _null_probabilities(tp, fn, fp, tn)
        if np.isclose(probs, observed, rtol=1e-7, atol=0.0).sum() > 1:
            continue  # another table is as probable as the observed one: see the next test
        full = fisher_p(tp, fn, fp, tn, mid=False)
        assert fisher_p(tp, fn, fp, tn) == pytest.approx(full - 0.5 * observed, abs=1e-12)
        checked += 1
    assert checked > 900


def test_fisher_mid_p_halves_every_table_as_probable_as_the_observed_one() -> None:
    # Two-sided mid-p as in contingencytables::Fisher_midP_test_2x2: tables less probable than the
    # observed one count fully, those exactly as probable (the observed one included) count half.
    checked = 0
    for tp, fn, fp, tn in _tables():
        probs, observed = _null_probabilities(tp, fn, fp, tn)
        tied = np.isclose(probs, observed, rtol=1e-7, atol=0.0)
        if tied.sum() == 1:
            continue
        full = fisher_p(tp, fn, fp, tn, mid=False)
        assert fisher_p(tp, fn, fp, tn) == pytest.approx(full - 0.5 * probs[tied].sum(), abs=1e-12)
        checked += 1
    assert checked > 100


def test_fisher_mid_p_matches_contingencytables_published_values() -> None:
    # contingencytables tests/testthat/test-issue62.R: [[2, 36], [8, 30]] and its row swap give 0.04998656.
    assert fisher_p(2, 36, 8, 30) == pytest.approx(0.04998656, abs=5e-9)
    assert fisher_p(8, 30, 2, 36) == pytest.approx(0.04998656, abs=5e-9)


def test_fisher_mid_p_is_never_above_exact_p() -> None:
    for tp, fn, fp, tn in _tables():
        mid, full = fisher_p(tp, fn, fp, tn), fisher_p(tp, fn, fp, tn, mid=False)
        assert 0.0 < mid <= full <= 1.0


def test_fisher_p_is_none_when_a_class_is_empty() -> None:
    assert fisher_p(0, 0, 3, 4) is None
    assert fisher_p(2, 5, 0, 0) is None
    assert fisher_p(0, 0, 3, 4, mid=False) is None


def test_fisher_p_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        fisher_p(-1, 2, 3, 4)


# --- readers.summarise ---------------------------------------------------------------------------------


def test_summarise_hand_made_table() -> None:
    # 6 synthetic (positive) cases, 4 real; a rating above 5.5 calls "synthetic".
    truth = [True, True, True, True, True, True, False, False, False, False]
    ratings = [10, 9, 7, 6, 3, 2, 1, 2, 8, 5]
    # Synthetic called synthetic: 10, 9, 7, 6 -> 4 of 6; real called real: 1, 2, 5 -> 3 of 4.
    s = summarise(truth, ratings, threshold=5.5)
    assert s.n == 10
    assert (s.sensitivity.k, s.sensitivity.n, s.sensitivity.value) == (4, 6, pytest.approx(4 / 6))
    assert (s.specificity.k, s.specificity.n, s.specificity.value) == (3, 4, pytest.approx(3 / 4))
    assert (s.fooling_rate.k, s.fooling_rate.n) == (2, 6)
    assert s.fooling_rate.value == pytest.approx(1.0 - s.sensitivity.value)
    assert s.youden == pytest.approx(4 / 6 + 3 / 4 - 1.0)
    assert (s.accuracy.k, s.accuracy.n, s.accuracy.value) == (7, 10, pytest.approx(0.7))
    assert (s.sensitivity.low, s.sensitivity.high) == pytest.approx(proportion_confint(4, 6, method="wilson"))
    assert s.auc.value == pytest.approx(roc_auc_score(truth, ratings), abs=1e-12)
    assert s.fisher_p == fisher_p(4, 2, 1, 3)
    assert s.fisher_p < stats.fisher_exact([[4, 2], [1, 3]]).pvalue
    assert len(s.roc) == len(set(ratings)) + 1


def test_summarise_rating_at_threshold_is_called_real() -> None:
    s = summarise([True, True, False, False], [6, 5, 5, 1], threshold=5)
    assert (s.sensitivity.k, s.specificity.k) == (1, 2)


def test_summarise_one_class_leaves_the_other_figures_undefined() -> None:
    s = summarise([True, True, True], [8, 3, 9])
    assert s.sensitivity.value == pytest.approx(2 / 3)
    assert s.specificity.value is None and s.youden is None and s.fisher_p is None
    assert s.auc.value is None and s.roc == []
