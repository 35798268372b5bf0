"""Where realism holds and where it breaks: by finding, by confidence, by position in the order, by time.

Segal et al. report realism per pathology; a reader study also has to show whether confidence means
anything (calibration), whether readers tire or learn along their order (position), and how long a
film takes when it fools a reader. Each figure carries its n and an interval; none is a test.

- By finding: for each finding, the synthetic films labelled with it against the real films labelled
  with it: the fooling rate (synthetic called real) with a Wilson interval and the AUC of the ratings
  with a DeLong interval, over every reading (descriptive: readings of a case are correlated).
- Calibration: accuracy at each confidence level, Wilson intervals.
- Position: accuracy in fifths of each reader's own readings (practice excluded), Wilson intervals.
- Time: median seconds per reading by truth and by correctness, with the interquartile range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.domain.ratings import rating
from app.stats.proportions import Proportion, proportion
from app.stats.roc import Auc, auc_with_ci

POSITION_BINS = 5


@dataclass(frozen=True)
class FindingRealism:
    """Realism of the films with one finding: synthetic vs real films labelled with it."""

    finding: str
    synthetic: int  # readings of synthetic films labelled with the finding
    real: int  # readings of real films labelled with the finding
    fooling_rate: Proportion
    auc: Auc
    marked_real: int  # readings of real films (any) on which readers marked the finding
    marked_synthetic: int


@dataclass(frozen=True)
class Bin:
    """Accuracy in one group of readings."""

    label: str
    accuracy: Proportion


@dataclass(frozen=True)
class Timing:
    """Seconds per reading in one group: median and quartiles."""

    label: str
    n: int
    median_s: float | None
    q1_s: float | None
    q3_s: float | None


@dataclass(frozen=True)
class Realism:
    """By finding, calibration, position and time."""

    by_finding: list[FindingRealism]
    calibration: list[Bin]
    position: list[Bin]
    timing: list[Timing]


def _correct(r) -> bool:
    return r.verdict == r.truth


def by_finding(reads: Sequence, findings: Sequence[str]) -> list[FindingRealism]:
    """Per finding: fooling rate and AUC of synthetic vs real films labelled with it (labelled sets only)."""
    out = []
    for f in findings:
        group = [r for r in reads if r.labels is not None and f in r.labels]
        synthetic = [r for r in group if r.truth == "synthetic"]
        fooled = sum(1 for r in synthetic if r.verdict == "real")
        out.append(
            FindingRealism(
                finding=f,
                synthetic=len(synthetic),
                real=len(group) - len(synthetic),
                fooling_rate=proportion(fooled, len(synthetic)),
                auc=auc_with_ci(
                    [r.truth == "synthetic" for r in group], [rating(r.verdict, r.confidence) for r in group]
                ),
                marked_real=sum(1 for r in reads if r.truth == "real" and f in r.findings),
                marked_synthetic=sum(1 for r in reads if r.truth == "synthetic" and f in r.findings),
            )
        )
    return out


def calibration(reads: Sequence) -> list[Bin]:
    """Accuracy at each confidence level 1..5."""
    return [
        Bin(str(c), proportion(sum(_correct(r) for r in group), len(group)))
        for c in range(1, 6)
        for group in [[r for r in reads if r.confidence == c]]
    ]


def position(reads: Sequence) -> list[Bin]:
    """Accuracy in fifths of each reader's own readings, in reading order.

    Fifths of each reader's readings rather than of the positions: a reader who stopped early then adds
    to every fifth, so a strong early quitter and a weak finisher cannot fake a fatigue trend.
    """
    own: dict[str, list] = {}
    for r in reads:
        own.setdefault(r.reader, []).append(r)
    hits = np.zeros(POSITION_BINS, dtype=int)
    counts = np.zeros(POSITION_BINS, dtype=int)
    for rs in own.values():
        for i, r in enumerate(sorted(rs, key=lambda r: r.position)):
            b = i * POSITION_BINS // len(rs)
            counts[b] += 1
            hits[b] += _correct(r)
    if not reads:
        return []
    labels = ("first fifth", "second", "third", "fourth", "last fifth")
    return [Bin(labels[b], proportion(int(hits[b]), int(counts[b]))) for b in range(POSITION_BINS)]


def _timing(label: str, reads: Sequence) -> Timing:
    seconds = np.array([r.duration_ms / 1000.0 for r in reads if r.duration_ms is not None])
    if seconds.size == 0:
        return Timing(label, 0, None, None, None)
    q1, med, q3 = (float(v) for v in np.quantile(seconds, [0.25, 0.5, 0.75]))
    return Timing(label, int(seconds.size), med, q1, q3)


def timing(reads: Sequence) -> list[Timing]:
    """Seconds per reading: by truth, by correctness, and for the synthetic films that fooled."""
    return [
        _timing("real films", [r for r in reads if r.truth == "real"]),
        _timing("synthetic films", [r for r in reads if r.truth == "synthetic"]),
        _timing("correct answers", [r for r in reads if _correct(r)]),
        _timing("wrong answers", [r for r in reads if not _correct(r)]),
        _timing("synthetic called real", [r for r in reads if (r.truth, r.verdict) == ("synthetic", "real")]),
    ]


def realism(reads: Sequence, findings: Sequence[str]) -> Realism:
    """All four views of a study's latest readings."""
    return Realism(
        by_finding=by_finding(reads, findings),
        calibration=calibration(reads),
        position=position(reads),
        timing=timing(reads),
    )

