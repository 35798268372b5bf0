"""The OR analysis against two published outputs of reference implementations.

1. Van Dyke et al. (1993), 2 modalities x 5 readers x 114 cases, against OR-DBM MRMC 2.5
   (../shared/reference/mrmc/README.md; the data copied to tests/reference/mrmc/vandyke.csv).
2. Federica Zanca's data set in ROC form, 5 modalities x 4 readers x 200 cases, against JAFROC 4.2.1's
   DBM-MRMC report (tests/reference/mrmc/README.md). JAFROC is an independent implementation (DBM on
   jackknife pseudovalues, which Hillis et al. 2005 show equal to OR with jackknife covariances).

Each figure is compared at the precision it was printed: |ours - printed| <= half a unit in its last
printed digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.stats.mrmc import analyse
from app.stats.ratings import RatingTable

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "mrmc"


def printed(value: float | None, text: str, *, single: bool = False) -> None:
    """Assert that `value` rounds to the printed `text`: half a unit of its last digit.

    JAFROC accumulates in single precision and prints 8 decimals, beyond what float32 holds: `single`
    asks for 5 significant digits instead (1e-5 relative; for the small variance components, relative
    to the 1e-3 scale of the covariances they are differences of).
    """
    assert value is not None
    decimals = len(text.split(".")[1]) if "." in text else 0
    tolerance = 0.5 * 10.0**-decimals + 1e-12 + (1e-5 * max(abs(float(text)), 1e-3) if single else 0.0)
    assert abs(value - float(text)) <= tolerance, f"{value!r} is not {text}"


def jafroc(value: float | None, text: str) -> None:
    """`printed` for JAFROC's single-precision figures."""
    printed(value, text, single=True)


@pytest.fixture(scope="module")
def vandyke():
    return analyse(RatingTable.from_csv((REFERENCE / "vandyke.csv").read_text()), method="jackknife")


@pytest.fixture(scope="module")
def fed():
    return analyse(RatingTable.from_csv((REFERENCE / "fed_roc.csv").read_text()), method="jackknife")


def test_vandyke_design_and_reader_aucs(vandyke) -> None:
    assert vandyke.modalities == ["0", "1"] and vandyke.readers == ["0", "1", "2", "3", "4"]
    assert (vandyke.n_cases, vandyke.n_positive, vandyke.n_negative) == (114, 45, 69)
    table = [
        ["0.91964573", "0.85877617", "0.90386473", "0.97310789", "0.82979066"],
        ["0.94782609", "0.90531401", "0.92173913", "0.99935588", "0.92995169"],
    ]
    for row, texts in zip(vandyke.foms, table, strict=True):
        for value, text in zip(row, texts, strict=True):
            printed(value, text)
    printed(vandyke.means[0], "0.89703704")
    printed(vandyke.means[1], "0.94083736")


def test_vandyke_mean_squares_and_components(vandyke) -> None:
    printed(vandyke.ms_t, "0.00479617")
    printed(vandyke.ms_r, "0.00383620")
    printed(vandyke.ms_tr, "0.00055103")
    c = vandyke.components
    for value, text in [
        (c.var_r, "0.00153500"),
        (c.var_tr, "0.00020040"),
        (c.cov1, "0.00034661"),
        (c.cov2, "0.00034407"),
        (c.cov3, "0.00023903"),
        (c.var_error, "0.00080229"),
    ]:
        printed(value, text)


def test_vandyke_rrrc(vandyke) -> None:
    a = vandyke.analyses["RRRC"]
    printed(a.test.statistic, "4.46")
    printed(a.test.ddf, "15.26")
    printed(a.test.p, "0.0517")
    (d,) = a.differences
    printed(d.estimate, "-0.04380")
    printed(d.se, "0.02075")
    printed(d.low, "-0.08796")
    printed(d.high, "0.00036")
    for level, (se, df, low, high) in zip(
        a.levels,
        [
            ("0.03317360", "12.74", "0.82522360", "0.96885048"),
            ("0.02156637", "12.71", "0.89413783", "0.98753689"),
        ],
        strict=True,
    ):
        printed(level.se, se)
        printed(level.df, df)
        printed(level.low, low)
        printed(level.high, high)


def test_vandyke_frrc_and_rrfc(vandyke) -> None:
    f = vandyke.analyses["FRRC"]
    printed(f.test.statistic, "5.47595")
    printed(f.test.p, "0.0193")
    printed(f.differences[0].se, "0.01872")
    printed(f.differences[0].low, "-0.08049")
    printed(f.differences[0].high, "-0.00711")
    printed(f.levels[0].se, "0.02428971")
    printed(f.levels[0].low, "0.84943008")
    printed(f.levels[0].high, "0.94464399")
    r = vandyke.analyses["RRFC"]
    assert (r.test.ndf, r.test.ddf) == (1, 4.0)
    printed(r.test.statistic, "8.70")
    printed(r.test.p, "0.0420")
    printed(r.differences[0].se, "0.01485")
    printed(r.differences[0].low, "-0.08502")
    printed(r.differences[0].high, "-0.00258")


def test_vandyke_delong_covariance_is_close_to_the_jackknife() -> None:
    """DeLong and the jackknife estimate the same covariances; on 114 cases they agree to a few %."""
    res = analyse(RatingTable.from_csv((REFERENCE / "vandyke.csv").read_text()), method="delong")
    assert res.covariance == "delong"
    assert res.components.var_error == pytest.approx(0.00080229, rel=0.03)
    assert res.components.cov2 == pytest.approx(0.00034407, rel=0.03)
    assert res.analyses["RRRC"].test.p == pytest.approx(0.0517, abs=0.002)


# JAFROC 4.2.1 on the FED data (tests/reference/mrmc/README.md), readers 1, 3, 4, 5 x treatments 1-5.
FED_FOMS = {
    "1": "0.90425003 0.86425000 0.81295002 0.90235001 0.84140003",
    "3": "0.79820001 0.84469998 0.81634998 0.83149999 0.77300000",
    "4": "0.81174999 0.82050002 0.75274998 0.78864998 0.77114999",
    "5": "0.86645001 0.87159997 0.85729998 0.87980002 0.84799999",
}
FED_RRRC_DIFFS = [  # estimate, se, t, p, low, high for 1-2, 1-3, ..., 4-5
    ("-0.00510", "0.01654", "-0.31", "0.7616", "-0.04002", "0.02982"),
    ("0.03532", "0.01654", "2.14", "0.0477", "0.00040", "0.07025"),
    ("-0.00541", "0.01654", "-0.33", "0.7475", "-0.04033", "0.02951"),
    ("0.03678", "0.01654", "2.22", "0.0402", "0.00185", "0.07170"),
    ("0.04042", "0.01654", "2.44", "0.0258", "0.00550", "0.07535"),
    ("-0.00031", "0.01654", "-0.02", "0.9851", "-0.03523", "0.03461"),
    ("0.04187", "0.01654", "2.53", "0.0216", "0.00695", "0.07680"),
    ("-0.04074", "0.01654", "-2.46", "0.0249", "-0.07566", "-0.00582"),
    ("0.00145", "0.01654", "0.09", "0.9312", "-0.03347", "0.03637"),
    ("0.04219", "0.01654", "2.55", "0.0208", "0.00727", "0.07711"),
]
FED_RRRC_LEVELS = [  # se, df, low, high per treatment
    ("0.02857825", "5.46", "0.77351390", "0.91681110"),
    ("0.01992816", "27.72", "0.80942310", "0.89110188"),
    ("0.02664787", "7.04", "0.74689263", "0.87278239"),
    ("0.02940869", "5.40", "0.77664336", "0.92450661"),
    ("0.02575833", "6.78", "0.74706749", "0.86970751"),
]


def test_fed_reader_aucs_and_components(fed) -> None:
    assert fed.readers == ["1", "3", "4", "5"] and fed.modalities == ["1", "2", "3", "4", "5"]
    foms = np.array(fed.foms)  # (T, J)
    for j, reader in enumerate(fed.readers):
        for t, text in enumerate(FED_FOMS[reader].split()):
            jafroc(float(foms[t, j]), text)
    c = fed.components
    for value, text in [
        (c.var_r, "0.00128372"),
        (c.var_tr, "-0.00001092"),
        (c.cov1, "0.00029480"),
        (c.cov2, "0.00023331"),
        (c.cov3, "0.00021213"),
        (c.var_error, "0.00078912"),
    ]:
        jafroc(value, text)


def test_fed_rrrc(fed) -> None:
    a = fed.analyses["RRRC"]
    assert a.test.ndf == 4
    jafroc(a.test.statistic, "3.47")
    jafroc(a.test.ddf, "16.80")
    jafroc(a.test.p, "0.0305")
    for d, row in zip(a.differences, FED_RRRC_DIFFS, strict=True):
        for value, text in zip((d.estimate, d.se, d.statistic, d.p, d.low, d.high), row, strict=True):
            jafroc(value, text)
    for level, row in zip(a.levels, FED_RRRC_LEVELS, strict=True):
        for value, text in zip((level.se, level.df, level.low, level.high), row, strict=True):
            jafroc(value, text)


def test_fed_fixed_readers_and_fixed_cases(fed) -> None:
    # JAFROC's DBM divides the FRRC statistic by (T - 1) and refers it to F(4, 796) where OR uses
    # chi^2(4); the statistic and the standard errors are the same.
    f = fed.analyses["FRRC"]
    jafroc(f.test.statistic / f.test.ndf, "3.40")
    for d in f.differences:
        jafroc(d.se, "0.01670")
    for level, se in zip(
        f.levels, ["0.01833087", "0.01968839", "0.02009507", "0.01862658", "0.01966999"], strict=True
    ):
        jafroc(level.se, se)
    r = fed.analyses["RRFC"]
    assert (r.test.ndf, r.test.ddf) == (4, 12.0)
    jafroc(r.test.statistic, "4.10")
    jafroc(r.test.p, "0.0253")
    jafroc(r.differences[0].se, "0.01520")
    jafroc(r.differences[1].p, "0.0385")
    jafroc(r.differences[1].low, "0.00220")
    for level, (se, low, high) in zip(
        r.levels,
        [
            ("0.02460753", "0.76685037", "0.92347463"),
            ("0.01142981", "0.81388773", "0.88663725"),
            ("0.02153248", "0.74131154", "0.87836347"),
            ("0.02538589", "0.76978576", "0.93136422"),
            ("0.02101166", "0.74151902", "0.87525597"),
        ],
        strict=True,
    ):
        jafroc(level.se, se)
        jafroc(level.low, low)
        jafroc(level.high, high)


def test_single_modality_subset_of_vandyke() -> None:
    """One modality alone gives the same per-modality RRRC interval as the two-modality analysis."""
    rows = [r for r in (REFERENCE / "vandyke.csv").read_text().splitlines()[1:] if r.startswith("0,")]
    one = analyse(
        RatingTable.from_csv("modality,reader,case,truth,rating\n" + "\n".join(rows)), method="jackknife"
    )
    (level,) = one.analyses["RRRC"].levels
    printed(level.se, "0.03317360")
    printed(level.low, "0.82522360")
    assert one.analyses["RRRC"].test is None and level.p < 1e-6  # far above AUC 0.5


def test_bad_tables_give_clear_errors() -> None:
    with pytest.raises(ValueError, match="lacks the column"):
        RatingTable.from_csv("reader,case,rating\n1,1,3\n")
    with pytest.raises(ValueError, match="row 3: case 'a' has truth 0 here and 1 before"):
        RatingTable.from_csv("reader,case,truth,rating\n1,a,1,3\n2,a,0,2\n")
    with pytest.raises(ValueError, match="row 3: a second rating"):
        RatingTable.from_csv("reader,case,truth,rating\n1,a,1,3\n1,a,1,2\n")
    with pytest.raises(ValueError, match="truth must be 0 or 1"):
        RatingTable.from_csv("reader,case,truth,rating\n1,a,yes,3\n")
    with pytest.raises(ValueError, match="finite"):
        RatingTable.from_csv("reader,case,truth,rating\n1,a,1,nan\n")
    with pytest.raises(ValueError, match="at least 2 of each"):
        RatingTable.from_csv("reader,case,truth,rating\n1,a,1,3\n1,b,0,2\n1,c,0,2\n")
    table = RatingTable.from_csv((REFERENCE / "vandyke.csv").read_text())
    with pytest.raises(ValueError, match="needs a threshold"):
        table.foms("accuracy")


def test_the_command_prints_the_tables_in_or_dbm_order(tmp_path) -> None:
    from click.testing import CliRunner

    from app.cli.analyse import analyse_group

    out = CliRunner().invoke(analyse_group, ["mrmc", str(REFERENCE / "vandyke.csv")])
    assert out.exit_code == 0, out.output
    order = [
        "Figures of merit",
        "ANOVA",
        "OR variance components",
        "Random readers, random cases",
        "Fixed readers",
        "Random readers, fixed cases",
    ]
    assert [out.output.index(h) for h in order] == sorted(out.output.index(h) for h in order)
    assert "F(1, 15.26) = 4.4563, p = 0.0517" in out.output and "0.82522360, 0.96885048" in out.output
    as_json = CliRunner().invoke(analyse_group, ["mrmc", str(REFERENCE / "vandyke.csv"), "--json"])
    assert '"cov2": 0.000344' in as_json.output
    (tmp_path / "bad.csv").write_text("reader,case,truth,rating\n1,a,2,3\n")
    bad = CliRunner().invoke(analyse_group, ["mrmc", str(tmp_path / "bad.csv")])
    assert bad.exit_code != 0 and "row 2: truth must be 0 or 1" in bad.output
    binary = CliRunner().invoke(analyse_group, ["mrmc", str(REFERENCE / "vandyke.csv"), "--fom", "accuracy"])
    assert binary.exit_code != 0 and "needs a threshold" in binary.output
