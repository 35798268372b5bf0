"""Finding names and the labels CSV that users bring with a folder of images."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from app.domain.errors import Invalid

# ChestX-ray14's 14 findings, in the order of its paper; the default label schema.
CXR14_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No Finding"

_FILE_COLUMNS = ("file", "filename", "file_name", "image", "image index", "path")
_FINDING_COLUMNS = ("findings", "finding labels", "labels", "label")
_PATIENT_COLUMNS = ("patient_id", "patient id", "patient")
_SPLIT_COLUMNS = ("split",)


@dataclass(frozen=True)
class LabelRow:
    """Labels and identifiers for one image file."""

    findings: tuple[str, ...]
    patient_id: str | None = None
    split: str | None = None


def parse_schema(text: str) -> tuple[str, ...]:
    """A comma- or line-separated list of finding names; empty means ChestX-ray14's."""
    names = [n.strip() for part in text.splitlines() for n in part.split(",") if n.strip()]
    if not names:
        return CXR14_FINDINGS
    if len(set(names)) != len(names):
        raise Invalid("The label schema names a finding twice.")
    if NO_FINDING in names:
        raise Invalid(
            f"'{NO_FINDING}' is the absence of findings, not a finding; leave it out of the schema."
        )
    return tuple(names)


def split_findings(value: str, schema: tuple[str, ...]) -> tuple[tuple[str, ...], set[str]]:
    """Findings named in a cell ('A|B', 'A;B', 'No Finding' or empty), in schema order, and unknown names."""
    names = {n.strip() for n in value.replace(";", "|").split("|") if n.strip()} - {NO_FINDING}
    unknown = names - set(schema)
    return tuple(f for f in schema if f in names), unknown


def _column(header: list[str], options: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for option in options:
        if option in lowered:
            return lowered.index(option)
    return None


def parse_labels_csv(data: bytes, schema: tuple[str, ...]) -> dict[str, LabelRow]:
    """Rows of a labels CSV keyed by file name (without folders); every error is reported at once."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid("The labels CSV is not UTF-8 text.") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise Invalid("The labels CSV is empty.")
    header, body = rows[0], rows[1:]
    file_col, find_col = _column(header, _FILE_COLUMNS), _column(header, _FINDING_COLUMNS)
    if file_col is None or find_col is None:
        raise Invalid(
            "The labels CSV needs a 'file' column and a 'findings' column (findings joined by '|')."
        )
    patient_col, split_col = _column(header, _PATIENT_COLUMNS), _column(header, _SPLIT_COLUMNS)
    out: dict[str, LabelRow] = {}
    unknown: dict[str, int] = {}
    problems: list[str] = []
    for lineno, row in enumerate(body, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(file_col, find_col):
            problems.append(f"line {lineno}: too few columns")
            continue
        name = row[file_col].strip().replace("\\", "/").rsplit("/", 1)[-1]
        findings, bad = split_findings(row[find_col], schema)
        for b in bad:
            unknown[b] = unknown.get(b, lineno)
        if name in out:
            problems.append(f"line {lineno}: {name} is listed twice")
        patient = row[patient_col].strip() if patient_col is not None and patient_col < len(row) else None
        split = row[split_col].strip() if split_col is not None and split_col < len(row) else None
        out[name] = LabelRow(findings, patient or None, split or None)
    if unknown:
        listed = ", ".join(f"'{u}' (line {line})" for u, line in sorted(unknown.items(), key=lambda x: x[1]))
        problems.insert(0, f"unknown findings {listed}; the label schema is: {', '.join(schema)}")
    if problems:
        raise Invalid("The labels CSV has problems: " + "; ".join(problems[:20]))
    return out
