"""A study's results page: each reader's progress beside the study's analysis (`app.domain.analysis`).

The analysis is computed from the latest, non-practice readings turned into `Read` records, the same
records `cxrlab analyse study` builds from the CSV export, so page, export and `analysis.json` agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.domain.analysis import Read, StudyAnalysis, analyse_reads, duration_ms, summary
from app.domain.viewing import ViewingSummary
from app.domain.viewing import summarise as summarise_viewing
from app.persistence.models import Study, User
from app.persistence.repositories import readings as reading_repo
from app.persistence.repositories import results as repo
from app.persistence.repositories import studies as study_repo
from app.stats.readers import ReaderSummary


@dataclass(frozen=True)
class ReaderRow:
    """One reader's progress and discrimination figures."""

    reader: User
    done: int
    total: int
    summary: ReaderSummary


@dataclass(frozen=True)
class StudyResults:
    """Everything the results page shows."""

    readers: list[ReaderRow]
    analysis: StudyAnalysis
    viewing: ViewingSummary


def study_reads(session: Session, study: Study) -> list[Read]:
    """The latest, non-practice readings of a study as analysis records."""
    return [
        Read(
            reader=r.pseudonym,
            case=r.opaque_id,
            truth=r.truth,
            verdict=r.verdict,
            confidence=r.confidence,
            set_name=r.set_name,
            findings=frozenset(r.findings),
            labels=frozenset(r.labels) if r.label_schema else None,
            position=r.position,
            duration_ms=duration_ms(r.shown_at, r.submitted_at),
            presentation=r.presentation,
            unreadable_reason=r.unreadable_reason,
        )
        for r in repo.latest_readings(session, study.id)
    ]


def study_analysis(session: Session, study: Study) -> StudyAnalysis:
    """The study's analysis from its stored readings."""
    reads = study_reads(session, study)
    return analyse_reads(reads, findings=study.findings, ask_findings=study.ask_findings)


def study_results(session: Session, study: Study) -> StudyResults:
    """The analysis with every assigned reader's progress (readers without readings included)."""
    analysis = study_analysis(session, study)
    progress = reading_repo.progress_by_reader(session, study.id)
    empty = summary([])
    return StudyResults(
        readers=[
            ReaderRow(
                reader=u,
                done=progress.get(u.id, (0, 0))[0],
                total=progress.get(u.id, (0, 0))[1],
                summary=analysis.readers.get(u.pseudonym, empty),
            )
            for u in study_repo.readers(session, study.id)
        ],
        analysis=analysis,
        viewing=summarise_viewing(
            repo.latest_viewing(session, study.id), (study.min_window_w, study.min_window_h)
        ),
    )
