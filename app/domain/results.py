"""A study's results: progress, per-reader and pooled accuracy, and per-finding counts and agreement.

Positive = synthetic (FACTS.md): sensitivity is synthetic called synthetic, specificity real called real.
Practice readings are excluded; a revised answer counts by its latest revision.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.domain.statistics import (
    FindingAgreement,
    ReaderMetrics,
    finding_agreement,
    fleiss_kappa_from_ratings,
    reader_metrics,
)
from app.persistence.models import Study, User
from app.persistence.repositories import readings as reading_repo
from app.persistence.repositories import results as repo
from app.persistence.repositories import studies as study_repo


@dataclass(frozen=True)
class ReaderRow:
    """One reader's progress and metrics."""

    reader: User
    done: int
    total: int
    metrics: ReaderMetrics


@dataclass(frozen=True)
class FindingCount:
    """How often a finding is labelled on real and synthetic cases and marked by readers."""

    finding: str
    label_real: int
    label_synthetic: int
    marked_real: int
    marked_synthetic: int


@dataclass(frozen=True)
class StudyResults:
    """Everything the results page shows."""

    readers: list[ReaderRow]
    pooled: ReaderMetrics
    fleiss_kappa: float | None
    findings: list[FindingCount]
    agreement: list[FindingAgreement]
    n_readings: int


def study_results(session: Session, study: Study) -> StudyResults:
    """Compute the results of a study from its stored readings."""
    rows = repo.latest_readings(session, study.id)
    progress = reading_repo.progress_by_reader(session, study.id)
    by_reader: dict[int, list] = defaultdict(list)
    for r in rows:
        by_reader[r.reader_id].append(r)

    def metrics(rs: list) -> ReaderMetrics:
        return reader_metrics(
            [r.truth == "synthetic" for r in rs],
            [r.verdict == "synthetic" for r in rs],
            [r.confidence for r in rs],
        )

    readers = [
        ReaderRow(
            reader=u,
            done=progress.get(u.id, (0, 0))[0],
            total=progress.get(u.id, (0, 0))[1],
            metrics=metrics(by_reader.get(u.id, [])),
        )
        for u in study_repo.readers(session, study.id)
    ]
    ratings: dict[int, dict[int, str]] = defaultdict(dict)
    for r in rows:
        ratings[r.case_id][r.reader_id] = r.verdict
    counts = []
    for f in study.findings:
        counts.append(
            FindingCount(
                finding=f,
                label_real=sum(1 for r in rows if r.truth == "real" and f in r.labels),
                label_synthetic=sum(1 for r in rows if r.truth == "synthetic" and f in r.labels),
                marked_real=sum(1 for r in rows if r.truth == "real" and f in r.findings),
                marked_synthetic=sum(1 for r in rows if r.truth == "synthetic" and f in r.findings),
            )
        )
    # Marks can only agree with labels where the image's set has labels (unlabelled GAN samples do not).
    labelled = [r for r in rows if r.label_schema]
    agreement = (
        finding_agreement(study.findings, [r.findings for r in labelled], [r.labels for r in labelled])
        if study.ask_findings
        else []
    )
    return StudyResults(
        readers=readers,
        pooled=metrics(rows),
        fleiss_kappa=fleiss_kappa_from_ratings(ratings),
        findings=counts,
        agreement=agreement,
        n_readings=len(rows),
    )
