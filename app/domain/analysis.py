"""A study's whole analysis from its readings alone: what the results page, `analysis.json` and
`cxrlab analyse study EXPORT.csv` show, computed by one function from one kind of record.

A `Read` is a latest, non-practice reading as both the database and the CSV export know it: the
reader's pseudonym, the case's opaque id, truth, verdict, confidence, image set, findings marked and
labelled, position and duration. `analyse_reads` sorts them first, so that the figures do not depend
on where the readings came from.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime

import numpy as np

from app.domain.agreement import FindingAgreement, ReaderAgreement, finding_agreement, reader_agreement
from app.domain.ratings import THRESHOLD, Mrmc, rating, study_mrmc
from app.domain.realism import Realism, realism
from app.domain.retest import Retest, retest_agreement
from app.stats.readers import ReaderSummary, summarise


@dataclass(frozen=True)
class Read:
    """One latest, non-practice reading."""

    reader: str  # pseudonym
    case: str  # opaque id
    truth: str  # real | synthetic
    verdict: str | None  # real | synthetic; None when the reader flagged the case unreadable
    confidence: int | None  # 1..5; None when flagged unreadable
    set_name: str
    findings: frozenset[str]
    labels: frozenset[str] | None  # None when the image's set carries no labels
    position: int
    duration_ms: int | None
    presentation: int = 1  # 2: a test-retest repeat, left out of every figure but test-retest
    unreadable_reason: str | None = None  # set: flagged unreadable, left out of every figure and counted


@dataclass(frozen=True)
class StudyAnalysis:
    """Every figure of a study's results."""

    n_readings: int
    readers: dict[str, ReaderSummary]  # by pseudonym
    pooled: ReaderSummary
    mrmc: Mrmc
    agreement: ReaderAgreement
    finding_agreement: list[FindingAgreement]
    realism: Realism
    retest: Retest | None  # None when the study repeats no case
    # Readings flagged unreadable (first showings), left out of every figure above: by reason, by reader.
    unreadable: dict[str, int]
    unreadable_by_reader: dict[str, int]


def duration_ms(shown_at: datetime | None, submitted_at: datetime) -> int | None:
    """Milliseconds from showing a case to storing its answer (server clock); None when never shown."""
    return int((submitted_at - shown_at).total_seconds() * 1000) if shown_at else None


def summary(reads: Sequence[Read]) -> ReaderSummary:
    """Discrimination figures of a group of readings on the 10-point scale."""
    return summarise(
        [r.truth == "synthetic" for r in reads],
        [rating(r.verdict, r.confidence) for r in reads],
        threshold=THRESHOLD,
    )


def counted(reads: Iterable[Read]) -> list[Read]:
    """The readings every figure counts: first showings that were answered (not repeats, not flags)."""
    return [r for r in reads if r.presentation == 1 and r.unreadable_reason is None]


def analyse_reads(reads: Iterable[Read], *, findings: Sequence[str], ask_findings: bool) -> StudyAnalysis:
    """The study's analysis from its latest readings; test-retest repeats count only in `retest`, and
    readings flagged unreadable only in `unreadable`."""
    every = sorted(reads, key=lambda r: (r.reader, r.case, r.presentation))
    flagged = [r for r in every if r.unreadable_reason is not None and r.presentation == 1]
    every = [r for r in every if r.unreadable_reason is None]
    ordered = counted(every)
    by_reader: dict[str, list[Read]] = {}
    for r in ordered:
        by_reader.setdefault(r.reader, []).append(r)
    # Marks can only agree with labels where the image's set has labels (unlabelled GAN samples do not).
    labelled = [r for r in ordered if r.labels is not None]
    marks = (
        finding_agreement(
            findings,
            [r.findings for r in labelled],
            [r.labels for r in labelled],  # type: ignore[misc]
            [r.case for r in labelled],
        )
        if ask_findings
        else []
    )
    return StudyAnalysis(
        n_readings=len(ordered),
        readers={name: summary(rs) for name, rs in by_reader.items()},
        pooled=summary(ordered),
        mrmc=study_mrmc(ordered),
        agreement=reader_agreement(ordered),
        finding_agreement=marks,
        realism=realism(ordered, findings),
        retest=retest_agreement(every),
        unreadable=dict(sorted(Counter(r.unreadable_reason for r in flagged).items())),  # type: ignore[arg-type]
        unreadable_by_reader=dict(sorted(Counter(r.reader for r in flagged).items())),
    )


def jsonable(value):
    """Any analysis result as JSON-ready data: dataclasses (by their `to_dict` where they have one),
    numpy values, and non-finite floats as None."""
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
