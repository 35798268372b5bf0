"""Planning a study before launch: how many readers and cases give 80 % power to show that readers tell
synthetic from real, when their true mean AUC is a given value (the OR method, `app.stats.power`).

Variance components come from a pilot study in the app (its single-modality OR analysis) or, without
one, from defaults: the case variance is Hanley & McNeil's (1982) at the AUC to detect with the planned
numbers of real and synthetic cases; the between-reader error covariance is 0.43 of it and the reader
variance 0.00174, from Van Dyke et al.'s (1993) data as OR-DBM MRMC publishes its analysis.
Defaults are a start; a pilot of a few readers is the honest basis.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.domain.analysis import counted
from app.domain.errors import Invalid, NotFound
from app.domain.ratings import study_mrmc
from app.domain.results import study_reads
from app.persistence.models import Study
from app.persistence.repositories import studies as repo
from app.stats.power import PilotComponents, Power, cases_for_power, power
from app.stats.roc import hanley_mcneil_variance

TARGET = 0.8
DEFAULT_AUC = 0.6
READERS_TABLE = (3, 4, 5, 6, 8, 10, 12)
DEFAULT_COV2_SHARE = 0.43  # Van Dyke: Cov2 / Var = 0.00034407 / 0.00080229
# One modality's readers vary by Var(R) + Var(T x R): Van Dyke's 0.00153500 + 0.00020040.
DEFAULT_VAR_R = 0.00174


@dataclass(frozen=True)
class Plan:
    """Power of the planned design and the cases needed for 80 % power at several reader counts."""

    auc: float
    source: str
    design: Power
    needed: list[tuple[int, Power | None]]
    note: str | None = None


def default_components(auc: float, cases: int, ratio_real: int, ratio_synthetic: int) -> PilotComponents:
    """Components from Hanley & McNeil's variance at `auc` and Van Dyke's reader figures."""
    share = ratio_synthetic / (ratio_real + ratio_synthetic)
    positives = max(1, round(cases * share))
    negatives = max(1, cases - positives)
    var = hanley_mcneil_variance(auc, positives, negatives)
    return PilotComponents(cases=cases, var_r=DEFAULT_VAR_R, var=var, cov2=DEFAULT_COV2_SHARE * var)


def pilot_components(session: Session, study_id: int) -> tuple[PilotComponents, str, float]:
    """A launched study's single-modality OR components, a line saying where they came from, and its share
    of synthetic cases."""
    study = repo.get(session, study_id)
    if study is None or study.status == "draft":
        raise NotFound("No launched study with that id to use as a pilot.")
    result = study_mrmc(counted(study_reads(session, study))).auc
    if result is None or result.components.cov2 is None:
        raise Invalid(f"“{study.title}” has no multi-reader analysis yet: it needs two readers' readings.")
    c = result.components
    if not c.var_error > 0:
        raise Invalid(f"“{study.title}” leaves no case variance (no reader ever erred): plan from defaults.")
    source = (
        f"pilot “{study.title}”: {len(result.readers)} readers × {result.n_cases} cases, "
        f"mean AUC {result.means[0]:.3f}"
    )
    comps = PilotComponents(cases=result.n_cases, var_r=c.var_r or 0.0, var=c.var_error, cov2=c.cov2)
    return comps, source, result.n_positive / result.n_cases


def plan(
    session: Session,
    *,
    auc: float,
    readers: int,
    cases: int,
    ratio_real: int = 1,
    ratio_synthetic: int = 1,
    pilot_id: int | None = None,
) -> Plan:
    """Power of `readers` x `cases` to show a mean AUC of `auc` above 1/2, and the cases 80 % needs."""
    if not 0.5 < auc < 1.0:
        raise Invalid("The AUC to detect must lie between 0.5 and 1.")
    if readers < 1 or cases < 4:
        raise Invalid("Plan for at least one reader and four cases.")
    if ratio_real < 1 or ratio_synthetic < 1:
        raise Invalid("A study needs real and synthetic cases for its AUC.")
    if pilot_id is None:
        comps = default_components(auc, cases, ratio_real, ratio_synthetic)
        source = "defaults (Hanley & McNeil's variance at this AUC; Van Dyke's reader variance, correlation)"
        note = None
    else:
        comps, source, pilot_share = pilot_components(session, pilot_id)
        share = ratio_synthetic / (ratio_real + ratio_synthetic)
        note = None
        if abs(pilot_share - share) > 0.05:
            note = (
                f"The pilot had {pilot_share:.0%} synthetic cases and this design {share:.0%}: the pilot's "
                "case variance holds for its own mix, so these figures are approximate."
            )
    effect = auc - 0.5
    return Plan(
        auc=auc,
        source=source,
        note=note,
        design=power(comps, readers=readers, cases=cases, effect=effect),
        needed=[(j, cases_for_power(comps, readers=j, effect=effect, target=TARGET)) for j in READERS_TABLE],
    )


def pilots(session: Session) -> list[Study]:
    """Studies that may serve as pilots: launched or closed."""
    return [s for s in repo.list_all(session) if s.status != "draft"]
