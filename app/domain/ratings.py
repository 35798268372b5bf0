"""A study's readings as ratings: the 10-point scale, the rating tables and the study's MRMC analyses.

Verdict x confidence is one ordinal rating of "synthetic": real 5 = 1, real 4 = 2, ... real 1 = 5,
synthetic 1 = 6, ... synthetic 5 = 10. A rating above 5.5 is a "synthetic" call. The study's
generators are its modalities: each synthetic image set is one, the real cases are shared by all (cases
nested within modality for the positives, which the DeLong covariance handles).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.stats.mrmc import MrmcResult, analyse
from app.stats.ratings import RatingTable

THRESHOLD = 5.5
ALL_SYNTHETIC = "all synthetic"


def rating(verdict: str, confidence: int) -> int:
    """The 10-point rating of 'synthetic' for a verdict and a confidence of 1 to 5."""
    if not 1 <= confidence <= 5:
        raise ValueError(f"confidence must be 1 to 5, got {confidence}")
    return 5 + confidence if verdict == "synthetic" else 6 - confidence


@dataclass(frozen=True)
class StudyTable:
    """A rating table of a study with the readers left out of it and why."""

    table: RatingTable | None
    left_out: list[str]
    reason: str | None

    def to_dict(self) -> dict:
        """The design for JSON: the table's size rather than its arrays."""
        t = self.table
        size = None if t is None else {"readers": t.readers, "modalities": t.modalities, "cases": t.n_cases}
        return {"table": size, "left_out": self.left_out, "reason": self.reason}


def study_table(reads: Sequence[Any], *, by_set: bool = False) -> StudyTable:
    """Readings -> RatingTable; readers with fewer than 2 real or 2 synthetic readings are left out.

    With `by_set`, each synthetic image set is a modality and the real readings count in each.
    """
    sets = sorted({r.set_name for r in reads if r.truth == "synthetic"}) if by_set else [ALL_SYNTHETIC]

    def modalities(r) -> list[str]:
        return [s for s in sets if r.truth == "real" or s in (ALL_SYNTHETIC, r.set_name)]

    counts: dict[tuple[str, str], list[int]] = {}
    for r in reads:
        for s in modalities(r):
            counts.setdefault((r.reader, s), [0, 0])[r.truth == "synthetic"] += 1
    readers = sorted({r.reader for r in reads})
    kept = {name for name in readers if all(min(counts.get((name, s), [0, 0])) >= 2 for s in sets)}
    left_out = [name for name in readers if name not in kept]
    if not kept:
        reason = "no reader has yet read two real and two synthetic cases"
        reason += " of each set" if by_set else ""
        return StudyTable(None, left_out, reason)
    records = [
        {
            "modality": s,
            "reader": r.reader,
            "case": r.case,
            "truth": "1" if r.truth == "synthetic" else "0",
            "rating": rating(r.verdict, r.confidence),
        }
        for r in reads
        if r.reader in kept
        for s in modalities(r)
    ]
    return StudyTable(RatingTable.from_rows(records, threshold=THRESHOLD), left_out, None)


@dataclass(frozen=True)
class Mrmc:
    """The OR analyses of a study: AUC and balanced accuracy over all synthetic cases, generators compared."""

    design: StudyTable
    auc: MrmcResult | None
    balanced: MrmcResult | None
    fooling: MrmcResult | None
    generators: MrmcResult | None  # AUC per synthetic set, when the study has several
    generators_design: StudyTable | None  # its readers may be fewer: each needs 2 + 2 cases of every set


def study_mrmc(reads: Sequence[Any]) -> Mrmc:
    """OR analyses of the latest readings (random readers and cases; DeLong or jackknife covariance)."""
    design = study_table(reads)
    if design.table is None:
        return Mrmc(design, None, None, None, None, None)
    by_set = study_table(reads, by_set=True)
    several = len({r.set_name for r in reads if r.truth == "synthetic"}) > 1
    generators = analyse(by_set.table) if several and by_set.table is not None else None
    return Mrmc(
        design=design,
        auc=analyse(design.table),
        balanced=analyse(design.table, fom="balanced_accuracy"),
        fooling=analyse(design.table, fom="fooling_rate", null=None),
        generators=generators,
        generators_design=by_set if several else None,
    )
