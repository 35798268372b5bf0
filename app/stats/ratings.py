"""Long-format rating tables (modality, reader, case, truth, rating) and their figures of merit.

This is the format of iMRMC, MRMCaov and OR-DBM MRMC, and of `cxrlab analyse mrmc FILE.csv`: one row
per modality x reader x case. The modality column is optional (one modality). Truth is 1 for a positive
case (synthetic, in a realism study) and 0 for a negative one, and must be the same on every row of a
case. A reader need not rate every case (the DeLong covariance then uses the cases in common), but every
reader must rate at least two cases of each class in every modality.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from app.stats.foms import Fom, auc_fom, proportion_fom

__all__ = ["FOM_KINDS", "RatingTable"]

# What each FOM is, for help texts and reports.
FOM_KINDS = {
    "auc": "area under the empirical ROC curve of the ratings (trapezoidal)",
    "balanced_accuracy": "(sensitivity + specificity) / 2 of the calls, the AUC of a single operating point",
    "accuracy": "share of cases called correctly",
    "fooling_rate": "share of positive (synthetic) cases called negative (real)",
}
# The chance value of each FOM, where one exists whatever the class ratio and the reader's bias.
CHANCE = {"auc": 0.5, "balanced_accuracy": 0.5, "accuracy": None, "fooling_rate": None}


@dataclass(frozen=True)
class RatingTable:
    """A validated rating table with integer codes for modalities (t), readers (j) and cases (k)."""

    modalities: list[str]
    readers: list[str]
    cases: list[str]
    truth: np.ndarray  # (K,) bool, per case
    t: np.ndarray  # (N,) modality index per row
    j: np.ndarray  # (N,) reader index per row
    k: np.ndarray  # (N,) case index per row
    rating: np.ndarray  # (N,) float
    threshold: float | None = None  # a rating above it is a positive call

    @property
    def n_cases(self) -> int:
        """Number of distinct cases."""
        return len(self.cases)

    @property
    def n_positive(self) -> int:
        """Number of positive cases."""
        return int(self.truth.sum())

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, object]], *, threshold: float | None = None
    ) -> RatingTable:
        """Build and validate a table from mappings with modality (optional), reader, case, truth, rating."""
        index: dict[str, dict[str, int]] = {"modality": {}, "reader": {}, "case": {}}
        truth: dict[int, bool] = {}
        t, j, k, rating = [], [], [], []
        seen: set[tuple[int, int, int]] = set()
        for line, row in enumerate(rows, start=2):
            try:
                names = (
                    str(row.get("modality") or "1").strip() or "1",
                    _required(row, "reader"),
                    _required(row, "case"),
                )
                codes = [
                    index[col].setdefault(name, len(index[col]))
                    for col, name in zip(index, names, strict=True)
                ]
                y = _truth(row.get("truth"))
                r = float(str(row.get("rating", "")).strip())
            except (ValueError, TypeError) as exc:
                raise ValueError(f"row {line}: {exc}") from None
            if not math.isfinite(r):
                raise ValueError(f"row {line}: rating must be a finite number")
            if truth.setdefault(codes[2], y) != y:
                raise ValueError(
                    f"row {line}: case {names[2]!r} has truth {int(y)} here and {int(not y)} before"
                )
            if tuple(codes) in seen:
                raise ValueError(
                    f"row {line}: a second rating of case {names[2]!r} by reader {names[1]!r} "
                    f"in modality {names[0]!r}"
                )
            seen.add((codes[0], codes[1], codes[2]))
            t.append(codes[0])
            j.append(codes[1])
            k.append(codes[2])
            rating.append(r)
        if not rating:
            raise ValueError("the table has no ratings")
        table = cls(
            modalities=list(index["modality"]),
            readers=list(index["reader"]),
            cases=list(index["case"]),
            truth=np.array([truth[c] for c in range(len(index["case"]))], dtype=bool),
            t=np.array(t),
            j=np.array(j),
            k=np.array(k),
            rating=np.array(rating),
            threshold=threshold,
        )
        table._check_cells()
        return table

    @classmethod
    def from_csv(cls, text: str, *, threshold: float | None = None) -> RatingTable:
        """Parse CSV text with a header naming reader, case, truth, rating and optionally modality."""
        reader = csv.DictReader(io.StringIO(text))
        missing = {"reader", "case", "truth", "rating"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"the CSV lacks the column(s) {', '.join(sorted(missing))}")
        return cls.from_rows(reader, threshold=threshold)

    def _check_cells(self) -> None:
        for ti, tname in enumerate(self.modalities):
            for ji, jname in enumerate(self.readers):
                mask = (self.t == ti) & (self.j == ji)
                y = self.truth[self.k[mask]]
                if y.sum() < 2 or (~y).sum() < 2:
                    raise ValueError(
                        f"reader {jname!r} in modality {tname!r} rated {int(y.sum())} positive and "
                        f"{int((~y).sum())} negative cases; every reader needs at least 2 of each"
                    )

    def is_factorial(self) -> bool:
        """True when every reader rated every case in every modality."""
        return len(self.rating) == len(self.modalities) * len(self.readers) * len(self.cases)

    def foms(self, kind: str) -> list[list[Fom]]:
        """(T, J) FOMs of the given kind (see FOM_KINDS)."""
        if kind not in FOM_KINDS:
            raise ValueError(f"unknown figure of merit {kind!r}; choose one of {', '.join(FOM_KINDS)}")
        if kind != "auc" and self.threshold is None:
            raise ValueError(f"the figure of merit {kind!r} needs a threshold that turns ratings into calls")
        out = []
        for ti in range(len(self.modalities)):
            row = []
            for ji in range(len(self.readers)):
                mask = (self.t == ti) & (self.j == ji)
                cases, scores = self.k[mask], self.rating[mask]
                y = self.truth[cases]
                if kind == "auc":
                    row.append(auc_fom(cases, y, scores))
                    continue
                called = scores > self.threshold
                if kind == "balanced_accuracy":
                    row.append(auc_fom(cases, y, called.astype(float)))
                elif kind == "accuracy":
                    row.append(proportion_fom(cases, called == y))
                else:  # fooling_rate: positives called negative
                    row.append(proportion_fom(cases[y], ~called[y]))
            out.append(row)
        return out


def _required(row: Mapping[str, object], col: str) -> str:
    value = str(row.get(col) or "").strip()
    if not value:
        raise ValueError(f"the {col} is empty")
    return value


def _truth(value: object) -> bool:
    text = str(value if value is not None else "").strip()
    if text in ("1", "1.0"):
        return True
    if text in ("0", "0.0"):
        return False
    raise ValueError(f"truth must be 0 or 1, got {text!r}")
