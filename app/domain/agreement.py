"""Agreement in a study: between readers (on every reading, whatever is missing) and marks vs labels.

Between readers: Krippendorff's alpha on the verdicts (nominal) and on the 10-point ratings (ordinal)
over every case read by two or more readers, with a bootstrap interval over cases; Fleiss' kappa only
over the cases that every reader read, with that n; Cohen's kappa for each pair of readers over the
cases both read. Marks vs labels: per finding, Cohen's kappa over readings of labelled images, with an
interval that resamples cases (several readers read one case).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from app.domain.ratings import rating
from app.stats.agreement import (
    Agreement,
    binary_kappas_with_ci,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_with_ci,
)
from app.stats.proportions import Proportion, proportion


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two readers' verdicts over the cases both read."""

    first: str
    second: str
    n: int
    kappa: float | None


@dataclass(frozen=True)
class ReaderAgreement:
    """Inter-reader agreement figures, each with the cases and readers it used."""

    verdicts: Agreement
    ratings: Agreement
    fleiss: float | None
    fleiss_cases: int
    readers: list[str]
    pairs: list[PairKappa]


@dataclass(frozen=True)
class FindingAgreement:
    """Agreement between the findings readers marked and the image labels, for one finding."""

    finding: str
    n: int
    reader_positive: int
    label_positive: int
    both: int
    agreement: Proportion
    kappa: float | None
    kappa_low: float | None
    kappa_high: float | None


def reader_agreement(reads: Sequence[Any]) -> ReaderAgreement:
    """Agreement between readers from latest readings (reader, case, verdict, confidence)."""
    readers = sorted({r.reader for r in reads})
    cases = sorted({r.case for r in reads})
    row_of, col_of = {name: n for n, name in enumerate(readers)}, {c: n for n, c in enumerate(cases)}
    verdict = np.full((len(readers), len(cases)), -1, dtype=np.int64)  # (raters, items), -1 = unread
    score = np.full((len(readers), len(cases)), -1, dtype=np.int64)
    for r in reads:
        verdict[row_of[r.reader], col_of[r.case]] = r.verdict == "synthetic"
        score[row_of[r.reader], col_of[r.case]] = rating(r.verdict, r.confidence) - 1
    complete = (verdict >= 0).all(axis=0) if readers else np.zeros(0, dtype=bool)
    fleiss = None
    if len(readers) >= 2 and complete.any():
        table = np.stack([(verdict[:, complete] == v).sum(axis=0) for v in (0, 1)], axis=1)  # (cases, 2)
        fleiss = fleiss_kappa(table)
    pairs = []
    for a, b in combinations(range(len(readers)), 2):
        both = (verdict[a] >= 0) & (verdict[b] >= 0)
        kappa = cohen_kappa(verdict[a, both].tolist(), verdict[b, both].tolist())
        pairs.append(PairKappa(readers[a], readers[b], int(both.sum()), kappa))
    return ReaderAgreement(
        verdicts=krippendorff_with_ci(verdict, level="nominal"),
        ratings=krippendorff_with_ci(score, level="ordinal"),
        fleiss=fleiss,
        fleiss_cases=int(complete.sum()),
        readers=readers,
        pairs=pairs,
    )


def finding_agreement(
    findings: Sequence[str],
    marked: Sequence[Collection[str]],
    labels: Sequence[Collection[str]],
    cases: Sequence[str],
) -> list[FindingAgreement]:
    """Per finding: how often a reading's marks match its image's labels, with kappa and its interval."""
    if not len(marked) == len(labels) == len(cases):
        raise ValueError("marked, labels and cases must have one length")
    mark = np.array([[f in m for f in findings] for m in marked], dtype=bool).reshape(-1, len(findings))
    label = np.array([[f in lab for f in findings] for lab in labels], dtype=bool).reshape(-1, len(findings))
    kappas = binary_kappas_with_ci(mark, label, clusters=cases)  # (F,) one shared set of resamples
    return [
        FindingAgreement(
            finding=finding,
            n=len(marked),
            reader_positive=int(mark[:, f].sum()),
            label_positive=int(label[:, f].sum()),
            both=int((mark[:, f] & label[:, f]).sum()),
            agreement=proportion(int((mark[:, f] == label[:, f]).sum()), len(marked)),
            kappa=kappas[f][0],
            kappa_low=kappas[f][1],
            kappa_high=kappas[f][2],
        )
        for f, finding in enumerate(findings)
    ]
