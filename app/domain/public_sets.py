"""What the CheXpert and MIMIC-CXR-JPG importers share: the 14 observation columns, the uncertainty
policies, the options, and reading their CSVs (plain or gzipped) with errors that name file and line.

The importers themselves are app.domain.chexpert and app.domain.mimic.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.domain.errors import Invalid
from app.domain.importers import SourceImage
from app.domain.labels import NO_FINDING
from app.domain.schemas import CHEXPERT_FINDINGS, SCHEMAS, translate

# -1 in a CheXpert-style column: "ignore" (U-Ignore) leaves it out of the labels and lists it under
# provenance["uncertain"] for a trainer to mask; "positive" (U-Ones) counts it as present; "negative"
# (U-Zeros) as absent.
POLICIES = ("ignore", "positive", "negative")
VIEWS = ("frontal", "lateral", "all")
LABEL_SCHEMAS = tuple(SCHEMAS)
OBSERVATION_COLUMNS = (*CHEXPERT_FINDINGS, NO_FINDING)
# Blank means "not mentioned in the report", which the labellers' own papers treat as negative.
_VALUES = {"1.0": 1, "1": 1, "0.0": 0, "0": 0, "-1.0": -1, "-1": -1, "": None}


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> None:
    """Invalid unless `value` is one of `allowed`."""
    if value not in allowed:
        raise Invalid(f"{option} must be one of {', '.join(allowed)}, not '{value}'.")


def check_options(*, uncertain: str, views: str, labels_as: str, limit: int | None) -> None:
    """Refuse an unknown option value before any file is read."""
    check_choice("uncertain", uncertain, POLICIES)
    check_choice("views", views, VIEWS)
    check_choice("labels_as", labels_as, LABEL_SCHEMAS)
    if limit is not None and limit < 1:
        raise Invalid("limit must be 1 or more.")


def find_csv(root: Path, stem: str) -> Path:
    """`root/<stem>.csv`, or its gzipped form; Invalid naming both when neither is there."""
    for candidate in (root / f"{stem}.csv", root / f"{stem}.csv.gz"):
        if candidate.is_file():
            return candidate
    raise Invalid(f"{root / stem}.csv (or .csv.gz) is missing: point at the folder that holds it.")


def _open(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def check_header(path: Path, required: tuple[str, ...]) -> None:
    """Invalid naming the file and the missing columns, read from the first line only."""
    try:
        with _open(path) as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Invalid(f"{path} cannot be read as a CSV file: {exc}") from exc
    missing = [c for c in required if c not in {h.strip() for h in header}]
    if missing:
        raise Invalid(f"{path} has no column {', '.join(repr(c) for c in missing)}.")


def rows(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """('<file> line <n>', row) for every non-empty row, with stripped header names and values."""
    try:
        with _open(path) as fh:
            reader = csv.DictReader(fh)
            reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
            for row in reader:
                if any(v for v in row.values() if isinstance(v, str) and v.strip()):
                    yield (
                        f"{path.name} line {reader.line_num}",
                        {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)},
                    )
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Invalid(f"{path} cannot be read as a CSV file: {exc}") from exc


def labelled(row: dict[str, str], where: str, *, policy: str, labels_as: str) -> tuple[tuple[str, ...], dict]:
    """(findings in the set's schema, provenance) of one row of the 14 CheXpert-style columns.

    Provenance keeps the source's own labels ("source_labels" for 1.0, "source_uncertain" for -1.0, in
    CheXpert's names) whatever the policy, and "uncertain" lists what a trainer should mask: the -1.0
    findings in the set's schema under "ignore", none under the other two.
    """
    positive, uncertain = [], []
    for column in OBSERVATION_COLUMNS:
        raw = row.get(column, "")
        if raw not in _VALUES:
            raise Invalid(f"{where}: '{column}' is '{raw}'; a label is 1.0, 0.0, -1.0 or blank.")
        if column == NO_FINDING:
            continue
        if _VALUES[raw] == 1:
            positive.append(column)
        elif _VALUES[raw] == -1:
            uncertain.append(column)
    present = positive + uncertain if policy == "positive" else positive
    findings, unmapped = translate(present, "chexpert", labels_as)
    masked, _ = translate(uncertain if policy == "ignore" else [], "chexpert", labels_as)
    provenance: dict[str, Any] = {
        "uncertain_policy": policy,
        "source_schema": "chexpert",
        "source_labels": positive,
        "source_uncertain": uncertain,
        "uncertain": list(masked),
    }
    if labels_as != "chexpert":
        provenance["labels_as"] = labels_as
        provenance["unmapped"] = list(unmapped)  # present under the policy, with no counterpart
    return findings, provenance


def limited(items: Iterator[SourceImage], limit: int | None) -> Iterator[SourceImage]:
    """The first `limit` items (all with None), still lazily."""
    return items if limit is None else itertools.islice(items, limit)
