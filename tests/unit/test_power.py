"""Power planning against RJafroc's published figures and against a simulation that knows the truth.

1. Comparing two modalities: RJafroc's SsPowerGivenJK / SsSampleSizeKGivenJ on the Van Dyke pilot
   (its test suite, tests/testthat/test-SsSampleSizeRoc.R, prints these to 8 digits).
2. The realism question, mean AUC above 1/2: components from pilot studies simulated with a known
   effect predict the share of simulated pivotal studies that reject, within Monte Carlo error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.stats.mrmc import analyse
from app.stats.power import PilotComponents, cases_for_power, power
from app.stats.ratings import RatingTable

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "mrmc"
EFFECT = -0.043800322  # Van Dyke's observed difference of modality means


@pytest.fixture(scope="module")
def vandyke() -> tuple[PilotComponents, float]:
    res = analyse(RatingTable.from_csv((REFERENCE / "vandyke.csv").read_text()), method="jackknife")
    c = res.components
    pilot = PilotComponents(
        cases=114, var_tr=c.var_tr, var=c.var_error, cov1=c.cov1, cov2=c.cov2, cov3=c.cov3
    )
    return pilot, res.means[0] - res.means[1]


@pytest.mark.parametrize(
    ("readers", "cases", "analysis", "expected"),
    [(10, 165, "RRRC", 0.80541995), (10, 131, "FRRC", 0.80091813), (10, 53, "RRFC", 0.80496663)],
)
def test_difference_power_matches_rjafroc(vandyke, readers, cases, analysis, expected) -> None:
    pilot, _ = vandyke
    got = power(pilot, readers=readers, cases=cases, effect=EFFECT, question="difference", analysis=analysis)
    assert got.power == pytest.approx(expected, abs=5e-8)


def test_observed_effect_power_and_sample_size_match_rjafroc(vandyke) -> None:
    pilot, observed = vandyke
    assert power(pilot, readers=6, cases=111, effect=observed, question="difference").power == pytest.approx(
        0.5526116, abs=5e-8
    )
    needed = cases_for_power(pilot, readers=6, effect=observed, question="difference")
    assert needed.cases == 251 and needed.power >= 0.8
    assert power(pilot, readers=6, cases=250, effect=observed, question="difference").power < 0.8


def test_no_effect_has_the_power_of_alpha() -> None:
    pilot = PilotComponents(cases=50, var_r=0.002, var=0.004, cov2=0.001)
    for analysis in ("RRRC", "FRRC", "RRFC"):
        assert power(pilot, readers=5, cases=80, effect=0.0, analysis=analysis).power == pytest.approx(0.05)


CUTS = np.linspace(-2.2, 2.2, 9)


def _study(rng, readers: int, n_real: int, n_synthetic: int, shift: float) -> RatingTable:
    """Readers see synthetic films `shift` more 'synthetic' on average; cases and readers vary as in life."""
    truth = np.r_[np.zeros(n_real, bool), np.ones(n_synthetic, bool)]
    look = rng.normal(0.0, 1.0, truth.size) + shift * truth
    ratings = [
        1 + np.searchsorted(CUTS, look + rng.normal(0.0, 0.3) + rng.normal(0.0, 1.0, truth.size))
        for _ in range(readers)
    ]
    k = truth.size
    return RatingTable(
        modalities=["g"],
        readers=[f"r{j}" for j in range(readers)],
        cases=[f"c{i}" for i in range(k)],
        truth=truth,
        t=np.zeros(readers * k, dtype=int),
        j=np.repeat(np.arange(readers), k),
        k=np.tile(np.arange(k), readers),
        rating=np.concatenate(ratings).astype(float),
        threshold=5.5,
    )


def test_single_modality_power_predicts_simulated_studies() -> None:
    rng = np.random.default_rng(11)
    shift = 0.45
    # Pilots of 5 readers x 80 cases; average their components as a planner with a few pilots would.
    pilots = [analyse(_study(rng, 5, 40, 40, shift)) for _ in range(40)]
    comps = PilotComponents(
        cases=80,
        var_r=float(np.mean([p.components.var_r for p in pilots])),
        var=float(np.mean([p.components.var_error for p in pilots])),
        cov2=float(np.mean([p.components.cov2 for p in pilots])),
    )
    studies = [analyse(_study(rng, 4, 30, 30, shift)).analyses["RRRC"].levels[0] for _ in range(1000)]
    # The simulation knows the truth: the true mean AUC, to +- 0.002 from 1,000 pivotal studies.
    effect = float(np.mean([s.estimate for s in studies])) - 0.5
    predicted = power(comps, readers=4, cases=60, effect=effect).power
    rejected = float(np.mean([s.p < 0.05 for s in studies]))
    # Monte Carlo SE at 1,000 studies is about 0.016; the pilots' components add their own error.
    assert 0.2 < predicted < 0.95
    assert rejected == pytest.approx(predicted, abs=0.05), (rejected, predicted)
