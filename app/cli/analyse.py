"""`cxrlab analyse mrmc FILE.csv` and `cxrlab analyse study EXPORT.csv`: the results page's analyses
from files.

- `mrmc`: any long-format rating table with columns modality (optional), reader, case, truth (1 =
  positive, e.g. synthetic) and rating, through `app.stats.mrmc.analyse`, the code the results page
  runs. The report prints in the order of OR-DBM MRMC: figures of merit, ANOVA, OR components, then
  the random-reader random-case, fixed-reader and fixed-case analyses.
- `study`: a study's CSV export, through `app.domain.analysis.analyse_reads`, the function behind the
  results page and its `analysis.json`; `--json` prints exactly what `analysis.json` holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.domain.analysis import StudyAnalysis, analyse_reads, jsonable
from app.domain.exports import reads_from_export
from app.stats.mrmc import Analysis, MrmcResult, analyse
from app.stats.ratings import CHANCE, FOM_KINDS, RatingTable

TITLES = {
    "RRRC": "Random readers, random cases (Obuchowski-Rockette, Hillis ddf)",
    "FRRC": "Fixed readers, random cases",
    "RRFC": "Random readers, fixed cases",
}


def _n(value: float | None, digits: int = 8) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _df(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2f}"


def _p(value: float | None) -> str:
    return "-" if value is None else ("<0.0001" if value < 1e-4 else f"{value:.4f}")


def _analysis_lines(a: Analysis, result: MrmcResult) -> list[str]:
    lines = ["", f"=== {TITLES[a.kind]} ==="]
    if a.test is not None:
        if a.kind == "FRRC":
            stat = _n(a.test.statistic, 5)
            lines.append(f"Equal modalities: chi2({a.test.ndf}) = {stat}, p = {_p(a.test.p)}")
        else:
            lines.append(
                f"Equal modalities: F({a.test.ndf}, {_df(a.test.ddf)}) = {_n(a.test.statistic, 4)}, "
                f"p = {_p(a.test.p)}"
            )
        lines.append(f"{'difference':<24}{'estimate':>11}{'SE':>11}{'df':>8}{'p':>9}   95 % CI")
        for d in a.differences:
            lines.append(
                f"{d.first + ' - ' + d.second:<24}{d.estimate:>11.5f}{d.se:>11.5f}{_df(d.df):>8}"
                f"{_p(d.p):>9}   ({d.low:.5f}, {d.high:.5f})"
            )
    null = "" if result.null is None else f"  p (= {result.null:g})"
    lines.append(f"{'modality':<24}{'estimate':>11}{'SE':>12}{'df':>8}   95 % CI{null}")
    for lv in a.levels:
        ci = "-" if lv.low is None else f"({lv.low:.8f}, {lv.high:.8f})"
        tail = "" if result.null is None else f"  {_p(lv.p)}"
        lines.append(f"{lv.modality:<24}{lv.estimate:>11.8f}{_n(lv.se):>12}{_df(lv.df):>8}   {ci}{tail}")
    return lines


def report(result: MrmcResult) -> str:
    """The analysis as text, in OR-DBM MRMC's order."""
    lines = [
        f"Figure of merit: {result.fom} ({FOM_KINDS[result.fom]}); covariance: {result.covariance}",
        f"{len(result.readers)} readers, {len(result.modalities)} modalities, {result.n_cases} cases "
        f"({result.n_positive} positive, {result.n_negative} negative)",
        "",
        "=== Figures of merit (reader x modality) ===",
        f"{'reader':<16}" + "".join(f"{m:>14}" for m in result.modalities),
    ]
    for j, reader in enumerate(result.readers):
        lines.append(f"{reader:<16}" + "".join(f"{row[j]:>14.8f}" for row in result.foms))
    lines.append(f"{'mean':<16}" + "".join(f"{m:>14.8f}" for m in result.means))
    lines += [
        "",
        "=== ANOVA of the figures of merit ===",
        f"MS(T) = {_n(result.ms_t)}   MS(R) = {_n(result.ms_r)}   MS(T x R) = {_n(result.ms_tr)}",
        "",
        "=== OR variance components ===",
    ]
    c = result.components
    for name, value in [
        ("Var(R)", c.var_r),
        ("Var(T x R)", c.var_tr),
        ("Cov1", c.cov1),
        ("Cov2", c.cov2),
        ("Cov3", c.cov3),
        ("Var(error)", c.var_error),
    ]:
        lines.append(f"{name:<12}{_n(value):>14}")
    for kind in ("RRRC", "FRRC", "RRFC"):
        if kind in result.analyses:
            lines += _analysis_lines(result.analyses[kind], result)
    return "\n".join(lines) + "\n"


def _from_file(path: Path, compute):
    """compute(text of PATH), with unreadable or invalid input as a one-line error."""
    try:
        return compute(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path.name} is not UTF-8 text: {exc.reason}") from exc
    except ValueError as exc:
        raise click.ClickException(f"{path.name}: {exc}") from exc


def _echo(result, as_text, as_json: bool) -> None:
    """Every figure as JSON, or the text report."""
    if as_json:
        click.echo(json.dumps(jsonable(result), indent=1, allow_nan=False))
    else:
        click.echo(as_text(result), nl=False)


@click.group()
def analyse_group() -> None:
    """Statistics on rating tables and study exports."""


@analyse_group.command("mrmc")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fom", type=click.Choice(list(FOM_KINDS)), default="auc", show_default=True)
@click.option(
    "--covariance",
    type=click.Choice(["auto", "jackknife", "delong"]),
    default="auto",
    show_default=True,
    help="auto: the jackknife when every reader rated every case in every modality, DeLong otherwise.",
)
@click.option("--threshold", type=float, default=None, help="Ratings above it are positive calls.")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="1 - the confidence level.")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON instead of tables.")
def mrmc(path: Path, fom: str, covariance: str, threshold: float | None, alpha: float, as_json: bool) -> None:
    """Obuchowski-Rockette MRMC analysis of PATH (CSV: modality, reader, case, truth, rating)."""
    if not 0.0 < alpha < 1.0:
        raise click.BadParameter("alpha must lie strictly between 0 and 1", param_hint="--alpha")
    result = _from_file(
        path,
        lambda text: analyse(
            RatingTable.from_csv(text, threshold=threshold),
            fom=fom,
            method=covariance,
            null=CHANCE[fom],
            alpha=alpha,
        ),
    )
    _echo(result, report, as_json)


def _study_report(an: StudyAnalysis) -> str:
    """The study analysis's headline figures as text."""
    flagged = sum(an.unreadable.values())
    lines = [f"{an.n_readings} readings" + (f"; {flagged} flagged unreadable, left out" if flagged else "")]
    m = an.mrmc
    if m.auc is None:
        lines.append(f"No multi-reader analysis: {m.design.reason}.")
    else:
        lines.append("")
        lines.append(report(m.auc).rstrip("\n"))
    lines += [
        "",
        "=== Readers ===",
        f"{'reader':<14}{'n':>5}{'AUC':>8}   95 % CI        p(0.5)  fooling  J     p(J=0)",
    ]
    for name, s in an.readers.items():
        auc = "-" if s.auc.value is None else f"{s.auc.value:.3f}"
        ci = "-" if s.auc.low is None else f"({s.auc.low:.3f}, {s.auc.high:.3f})"
        fool = "-" if s.fooling_rate.value is None else f"{s.fooling_rate.value:.3f}"
        youden = "-" if s.youden is None else f"{s.youden:.2f}"
        lines.append(
            f"{name:<14}{s.n:>5}{auc:>8}   {ci:<15}{_p(s.auc.p_chance):>7}  {fool:>7}  {youden:<5} "
            f"{_p(s.fisher_p)}"
        )
    a = an.agreement
    alpha = "-" if a.verdicts.value is None else f"{a.verdicts.value:.3f}"
    fleiss = "-" if a.fleiss is None else f"{a.fleiss:.3f}"
    lines += [
        "",
        "=== Agreement ===",
        f"Krippendorff's alpha (verdicts): {alpha} over {a.verdicts.n_items} cases, "
        f"{a.verdicts.n_raters} readers",
        f"Fleiss' kappa: {fleiss} over the {a.fleiss_cases} cases all {len(a.readers)} readers read",
    ]
    return "\n".join(lines) + "\n"


@analyse_group.command("study")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the analysis as the results page's analysis.json."
)
def study(path: Path, as_json: bool) -> None:
    """Recompute a study's results from its CSV export alone (PATH: the results page's export.csv)."""

    def from_export(text: str) -> StudyAnalysis:
        reads, findings, asked = reads_from_export(text)
        return analyse_reads(reads, findings=findings, ask_findings=asked)

    _echo(_from_file(path, from_export), _study_report, as_json)
