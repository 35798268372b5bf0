"""A study's readings as ratings: the 10-point scale and the rating tables the MRMC analysis reads.

Verdict x confidence is one ordinal rating of "synthetic": real 5 = 1, real 4 = 2, ... real 1 = 5,
synthetic 1 = 6, ... synthetic 5 = 10. A rating above 5.5 is a "synthetic" call. The study's
generators are its modalities: each synthetic image set is one, the real cases are shared by all (cases
nested within modality for the positives, which the DeLong covariance handles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def study_table(rows: Sequence[Any], names: Mapping[int, str], *, by_set: bool = False) -> StudyTable:
    """Latest readings -> RatingTable; readers with fewer than 2 real or 2 synthetic readings are left out.

    With `by_set`, each synthetic image set is a modality and the real readings count in each.
    """
    sets = sorted({r.set_name for r in rows if r.truth == "synthetic"}) if by_set else [ALL_SYNTHETIC]
    counts: dict[tuple[int, str], list[int]] = {}
    for r in rows:
        for s in sets:
            if r.truth == "real" or s in (ALL_SYNTHETIC, r.set_name):
                counts.setdefault((r.reader_id, s), [0, 0])[r.truth == "synthetic"] += 1
    readers = sorted({r.reader_id for r in rows}, key=lambda i: names.get(i, str(i)))
    kept = [i for i in readers if all(min(counts.get((i, s), [0, 0])) >= 2 for s in sets)]
    left_out = [names.get(i, str(i)) for i in readers if i not in kept]
    if not kept:
        reason = "no reader has yet read two real and two synthetic cases" + (
            " of each set" if by_set else ""
        )
        return StudyTable(None, left_out, reason)
    records = [
        {
            "modality": s,
            "reader": names.get(r.reader_id, str(r.reader_id)),
            "case": str(r.case_id),
            "truth": "1" if r.truth == "synthetic" else "0",
            "rating": rating(r.verdict, r.confidence),
        }
        for r in rows
        if r.reader_id in kept
        for s in sets
        if r.truth == "real" or s in (ALL_SYNTHETIC, r.set_name)
    ]
    return StudyTable(RatingTable.from_rows(records, threshold=THRESHOLD), left_out, None)
