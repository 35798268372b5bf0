"""A study's results: per-reader discrimination, the MRMC analysis, agreement, and findings.

Positive = synthetic (FACTS.md): sensitivity is synthetic called synthetic, specificity real called
real, the fooling rate synthetic called real. Practice readings are excluded; a revised answer counts
by its latest revision. Inference across readers and cases is the OR analysis (`app.stats.mrmc`), the
same code path as `cxrlab analyse mrmc`; pooled figures are descriptive.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.domain.agreement import FindingAgreement, ReaderAgreement, finding_agreement, reader_agreement
from app.domain.ratings import THRESHOLD, StudyTable, rating, study_table
from app.persistence.models import Study, User
from app.persistence.repositories import readings as reading_repo
from app.persistence.repositories import results as repo
from app.persistence.repositories import studies as study_repo
from app.stats.mrmc import MrmcResult, analyse
from app.stats.readers import ReaderSummary, summarise


@dataclass(frozen=True)
class ReaderRow:
    """One reader's progress and discrimination figures."""

    reader: User
    done: int
    total: int
    summary: ReaderSummary


@dataclass(frozen=True)
class FindingCount:
    """How often a finding is labelled on real and synthetic cases and marked by readers."""

    finding: str
    label_real: int
    label_synthetic: int
    marked_real: int
    marked_synthetic: int


@dataclass(frozen=True)
class Mrmc:
    """The OR analyses of a study: AUC and balanced accuracy over all synthetic cases, generators compared."""

    design: StudyTable
    auc: MrmcResult | None
    balanced: MrmcResult | None
    fooling: MrmcResult | None
    generators: MrmcResult | None  # AUC per synthetic set, when the study has several


@dataclass(frozen=True)
class StudyResults:
    """Everything the results page shows."""

    readers: list[ReaderRow]
    pooled: ReaderSummary
    mrmc: Mrmc
    agreement: ReaderAgreement
    findings: list[FindingCount]
    finding_agreement: list[FindingAgreement]
    n_readings: int


def _summary(rows: list) -> ReaderSummary:
    return summarise(
        [r.truth == "synthetic" for r in rows],
        [rating(r.verdict, r.confidence) for r in rows],
        threshold=THRESHOLD,
    )


def study_mrmc(rows: list, names: dict[int, str]) -> Mrmc:
    """OR analyses of the latest readings (random readers and cases; DeLong or jackknife covariance)."""
    design = study_table(rows, names)
    if design.table is None:
        return Mrmc(design, None, None, None, None)
    by_set = study_table(rows, names, by_set=True)
    generators = None
    if by_set.table is not None and len(by_set.table.modalities) > 1:
        generators = analyse(by_set.table)
    return Mrmc(
        design=design,
        auc=analyse(design.table),
        balanced=analyse(design.table, fom="balanced_accuracy"),
        fooling=analyse(design.table, fom="fooling_rate", null=None),
        generators=generators,
    )


def study_results(session: Session, study: Study) -> StudyResults:
    """Compute the results of a study from its stored readings."""
    rows = repo.latest_readings(session, study.id)
    progress = reading_repo.progress_by_reader(session, study.id)
    readers = study_repo.readers(session, study.id)
    names = {u.id: u.pseudonym for u in readers}
    by_reader: dict[int, list] = defaultdict(list)
    for r in rows:
        by_reader[r.reader_id].append(r)
    counts = [
        FindingCount(
            finding=f,
            label_real=sum(1 for r in rows if r.truth == "real" and f in r.labels),
            label_synthetic=sum(1 for r in rows if r.truth == "synthetic" and f in r.labels),
            marked_real=sum(1 for r in rows if r.truth == "real" and f in r.findings),
            marked_synthetic=sum(1 for r in rows if r.truth == "synthetic" and f in r.findings),
        )
        for f in study.findings
    ]
    # Marks can only agree with labels where the image's set has labels (unlabelled GAN samples do not).
    labelled = [r for r in rows if r.label_schema]
    marks = (
        finding_agreement(
            study.findings,
            [r.findings for r in labelled],
            [r.labels for r in labelled],
            [r.case_id for r in labelled],
        )
        if study.ask_findings
        else []
    )
    return StudyResults(
        readers=[
            ReaderRow(
                reader=u,
                done=progress.get(u.id, (0, 0))[0],
                total=progress.get(u.id, (0, 0))[1],
                summary=_summary(by_reader.get(u.id, [])),
            )
            for u in readers
        ],
        pooled=_summary(rows),
        mrmc=study_mrmc(rows, names),
        agreement=reader_agreement(rows, names),
        findings=counts,
        finding_agreement=marks,
        n_readings=len(rows),
    )
