"""Tests of app.stats.agreement against independent references.

References: the `krippendorff` package (0.9.0) for Krippendorff's alpha at nominal, ordinal and interval
level; the worked example of Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), 4 observers
x 12 units, published alpha 0.743 (nominal), 0.815 (ordinal), 0.849 (interval); statsmodels'
`fleiss_kappa` with `aggregate_raters` for Fleiss' kappa; scikit-learn's `cohen_kappa_score` for Cohen's
kappa, plain and with linear or quadratic weights.
"""

from __future__ import annotations

import warnings

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from app.stats.agreement import (
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_with_ci,
    weighted_kappa,
)

LEVELS = ("nominal", "ordinal", "interval")

# Krippendorff (2011), section "C. Nominal data, any number of observers, missing data": rows are
# observers A-D, columns units 1-12, values 1..5, None = missing.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
KRIPPENDORFF_2011_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849}


def _as_codes(values: np.ndarray) -> np.ndarray:
    """Float values 1..k with NaN for missing -> int codes 0..k-1 with -1 for missing (our input)."""
    return np.where(np.isnan(values), -1, np.nan_to_num(values, nan=1.0) - 1).astype(np.int64)


def _as_values(codes: np.ndarray) -> np.ndarray:
    """Int codes with -1 for missing -> floats with NaN for missing (the krippendorff package's input)."""
    return np.where(codes < 0, np.nan, codes.astype(float))


def _reference_alpha(codes: np.ndarray, level: str) -> float | None:
    """The krippendorff package's alpha, or None where it refuses the data or returns a non-finite value."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(krippendorff.alpha(reliability_data=_as_values(codes), level_of_measurement=level))
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def _random_ratings(seed: int) -> np.ndarray:
    """(raters, items) codes: 2-6 raters, 5-60 items, 2-10 categories, 0-40 % missing, raters that agree
    more than chance (a shared latent value plus noise), so alpha spreads over its range."""
    rng = np.random.default_rng(seed)
    raters, items, k = int(rng.integers(2, 7)), int(rng.integers(5, 61)), int(rng.integers(2, 11))
    missing = float(rng.uniform(0.0, 0.4))
    latent = rng.integers(0, k, size=items)  # (items,)
    noise = rng.integers(-1, 2, size=(raters, items)) * (rng.random((raters, items)) < 0.5)
    codes = np.clip(latent[None, :] + noise, 0, k - 1)  # (raters, items)
    random_rows = rng.random((raters, items)) < 0.2
    codes = np.where(random_rows, rng.integers(0, k, size=(raters, items)), codes)
    return np.where(rng.random((raters, items)) < missing, -1, codes).astype(np.int64)


def _three_readers(seed: int = 20) -> np.ndarray:
    """(3, 22) binary verdicts; reader 3 stopped after case 9 (cases 10-22 missing, -1)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, size=22)
    flips = rng.random((3, 22)) < 0.25
    verdicts = np.where(flips, 1 - truth[None, :], truth[None, :]).astype(np.int64)
    verdicts[2, 9:] = -1
    return verdicts


# --- Krippendorff's alpha --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", range(40))
def test_alpha_matches_krippendorff_package_on_random_matrices(seed: int, level: str) -> None:
    codes = _random_ratings(seed)
    expected = _reference_alpha(codes, level)
    got = krippendorff_alpha(codes, level=level)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-9)


def test_random_matrices_cover_the_stated_ranges() -> None:
    shapes = [_random_ratings(seed) for seed in range(40)]
    assert {c.shape[0] for c in shapes} >= {2, 6}
    assert min(c.shape[1] for c in shapes) < 15 and max(c.shape[1] for c in shapes) > 50
    assert any((c < 0).mean() > 0.3 for c in shapes) and any((c < 0).mean() < 0.05 for c in shapes)
    assert sum(_reference_alpha(c, "nominal") is not None for c in shapes) >= 38


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_krippendorff_2011_example_matches_publication_and_package(level: str) -> None:
    values = np.array(KRIPPENDORFF_2011, dtype=float)  # None -> NaN
    package = krippendorff.alpha(reliability_data=values, level_of_measurement=level)
    got = krippendorff_alpha(_as_codes(values), level=level)
    assert got == pytest.approx(package, abs=1e-9)
    # The package reproduces every published figure, so ours is held to them as well.
    assert round(package, 3) == KRIPPENDORFF_2011_PUBLISHED[level]
    assert round(got, 3) == KRIPPENDORFF_2011_PUBLISHED[level]


def test_alpha_of_perfect_agreement_is_one() -> None:
    codes = np.array([[0, 1, 2, 1, -1], [0, 1, 2, -1, 0], [-1, 1, 2, 1, 0]])
    for level in LEVELS:
        assert krippendorff_alpha(codes, level=level) == pytest.approx(1.0, abs=1e-12)


def test_alpha_degenerate_inputs_give_none() -> None:
    assert krippendorff_alpha(np.full((3, 5), -1)) is None
    assert krippendorff_alpha(np.array([[0, 0, -1], [0, 0, 0]])) is None  # a single category
    assert krippendorff_alpha(np.array([[0, 1, -1], [-1, -1, 1]])) is None  # no item rated twice


def test_alpha_rejects_unknown_level() -> None:
    with pytest.raises(ValueError):
        krippendorff_alpha(np.array([[0, 1], [1, 1]]), level="ratio")


# --- krippendorff_with_ci -----------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("seed", [1, 2, 3, 5, 8])
def test_alpha_ci_value_equals_alpha_and_lies_in_interval(seed: int, level: str) -> None:
    codes = _random_ratings(seed)
    result = krippendorff_with_ci(codes, level=level, resamples=400, seed=seed)
    assert result.value == krippendorff_alpha(codes, level=level)
    assert result.value == pytest.approx(_reference_alpha(codes, level), abs=1e-9)
    assert result.low is not None and result.high is not None
    assert result.low <= result.value <= result.high


def test_alpha_ci_counts_items_rated_twice_and_their_raters() -> None:
    codes = np.array(
        [
            #  0   1   2   3   4   5   6
            [0, 1, -1, 2, -1, -1, 0],
            [0, 1, 1, -1, -1, -1, -1],
            [1, -1, 1, -1, -1, -1, -1],
            [-1, -1, -1, -1, 2, -1, -1],  # rates only item 4, which no one else rated
            [-1, -1, -1, -1, -1, -1, -1],  # rates nothing
        ]
    )
    # Items with >= 2 ratings: 0 (three), 1 (two), 2 (two); 3, 4 and 6 have one, 5 none.
    result = krippendorff_with_ci(codes, resamples=50)
    assert result.n_items == 3
    assert result.n_raters == 3
    assert result.value == pytest.approx(_reference_alpha(codes, "nominal"), abs=1e-9)


def test_alpha_ci_same_seed_is_reproducible() -> None:
    codes = _random_ratings(11)
    first = krippendorff_with_ci(codes, level="ordinal", resamples=300, seed=7)
    second = krippendorff_with_ci(codes, level="ordinal", resamples=300, seed=7)
    other = krippendorff_with_ci(codes, level="ordinal", resamples=300, seed=8)
    assert first == second
    assert other.value == first.value
    assert (other.low, other.high) != (first.low, first.high)


def test_alpha_ci_all_missing_gives_none() -> None:
    result = krippendorff_with_ci(np.full((3, 6), -1), resamples=20)
    assert (result.value, result.low, result.high) == (None, None, None)
    assert (result.n_items, result.n_raters) == (0, 0)


def test_alpha_ci_single_category_gives_none() -> None:
    codes = np.array([[0, 0, 0, -1], [0, 0, -1, 0], [0, -1, 0, 0]])
    result = krippendorff_with_ci(codes, resamples=20)
    assert (result.value, result.low, result.high) == (None, None, None)
    assert (result.n_items, result.n_raters) == (4, 3)


# --- three readers, one of whom stopped early ------------------------------------------------------------


def test_three_readers_fleiss_uses_the_nine_complete_cases() -> None:
    verdicts = _three_readers()
    complete = (verdicts >= 0).all(axis=0)
    assert complete.sum() == 9 and complete[:9].all()
    table = np.stack([(verdicts[:, complete] == c).sum(axis=0) for c in (0, 1)], axis=1)  # (9, 2)
    reference_table, _ = aggregate_raters(verdicts[:, complete].T)
    expected = sm_fleiss_kappa(reference_table, method="fleiss")
    assert np.isfinite(expected)
    assert fleiss_kappa(table) == pytest.approx(expected, abs=1e-12)


def test_three_readers_alpha_uses_all_22_cases() -> None:
    verdicts = _three_readers()
    expected = krippendorff.alpha(reliability_data=_as_values(verdicts), level_of_measurement="nominal")
    assert krippendorff_alpha(verdicts) == pytest.approx(expected, abs=1e-9)
    result = krippendorff_with_ci(verdicts, resamples=200)
    assert (result.n_items, result.n_raters) == (22, 3)
    assert result.value == pytest.approx(expected, abs=1e-9)


# --- Fleiss' kappa --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_fleiss_matches_statsmodels_on_random_tables(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items, raters, k = int(rng.integers(3, 50)), int(rng.integers(2, 8)), int(rng.integers(2, 7))
    latent = rng.integers(0, k, size=items)
    noise = rng.integers(0, k, size=(items, raters))
    ratings = np.where(rng.random((items, raters)) < 0.6, latent[:, None], noise)
    table, _ = aggregate_raters(ratings, n_cat=k)  # (items, k)
    expected = sm_fleiss_kappa(table, method="fleiss")
    got = fleiss_kappa(table)
    if np.isfinite(expected):
        assert got == pytest.approx(expected, abs=1e-12)
    else:
        assert got is None


def test_fleiss_degenerate_tables_give_none() -> None:
    assert fleiss_kappa(np.zeros((0, 3))) is None
    assert fleiss_kappa(np.array([[3, 0], [3, 0], [3, 0]])) is None  # a single category used
    assert fleiss_kappa(np.array([[1, 0], [0, 1]])) is None  # one rater per item


def test_fleiss_rejects_unequal_row_sums() -> None:
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, 1], [1, 1]]))


# --- Cohen's kappa ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_cohen_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 80)), int(rng.integers(2, 6))
    a = rng.integers(0, k, size=n)
    b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, size=n))
    labels = np.array(["real", "synthetic", "unsure", "other", "skip"])
    a_labels, b_labels = labels[a].tolist(), labels[b].tolist()
    assert cohen_kappa(a_labels, b_labels) == pytest.approx(cohen_kappa_score(a_labels, b_labels), abs=1e-12)


def test_cohen_degenerate_inputs_give_none() -> None:
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["real"] * 4, ["real"] * 4) is None


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
@pytest.mark.parametrize("seed", range(20))
def test_weighted_kappa_matches_sklearn(seed: int, weights: str) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    a = rng.integers(1, 11, size=n)
    b = np.clip(a + rng.integers(-2, 3, size=n), 1, 10)
    if seed % 3 == 0:  # leave some categories unused so that labels= matters
        a, b = np.clip(a, 3, 8), np.clip(b, 3, 8)
    categories = list(range(1, 11))
    expected = cohen_kappa_score(a, b, labels=categories, weights=weights)
    got = weighted_kappa(a.tolist(), b.tolist(), categories=categories, weights=weights)
    assert got == pytest.approx(expected, abs=1e-12)


def test_weighted_kappa_degenerate_inputs_give_none() -> None:
    categories = list(range(1, 11))
    assert weighted_kappa([], [], categories=categories) is None
    assert weighted_kappa([4, 4, 4], [4, 4, 4], categories=categories, weights="linear") is None
    assert weighted_kappa([1, 1], [1, 1], categories=[1]) is None


def test_weighted_kappa_rejects_unknown_weights() -> None:
    with pytest.raises(ValueError):
        weighted_kappa([1, 2], [2, 1], categories=[1, 2], weights="cubic")
