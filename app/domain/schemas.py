"""Named label schemas of public data sets, and the one table that maps findings between them.

A set imported "as" another schema carries only the findings the table reaches: a film whose source
cannot say whether it shows Mass must not be stored as if it said "no Mass". So the set's label schema
is `mapped_schema(source, target)`, never the whole target schema, and findings without a counterpart
stay in each film's provenance (in the source's own names) rather than being dropped silently.
"""

from __future__ import annotations

from app.domain.errors import Invalid
from app.domain.labels import CXR14_FINDINGS

# CheXpert's observations that are findings, in the column order of its CSVs (and MIMIC-CXR-JPG's
# CheXpert- and NegBio-labelled CSVs, which use the same 14 columns). "No Finding" is the 14th column,
# the absence of findings, and never a finding of a schema.
CHEXPERT_FINDINGS: tuple[str, ...] = (
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

SCHEMAS: dict[str, tuple[str, ...]] = {
    "chestxray14": CXR14_FINDINGS,
    "chexpert": CHEXPERT_FINDINGS,
}

# CheXpert -> ChestX-ray14, one pair per line; the reverse is the same table read backwards. It is kept
# one-to-one on purpose: then "absent" on one side means "absent" on the other, in both directions.
CHEXPERT_TO_CXR14: dict[str, str] = {
    "Cardiomegaly": "Cardiomegaly",
    "Edema": "Edema",
    "Consolidation": "Consolidation",
    "Pneumonia": "Pneumonia",
    "Atelectasis": "Atelectasis",
    "Pneumothorax": "Pneumothorax",
    "Pleural Effusion": "Effusion",
}

# Names with no counterpart, and why (also the README's table).
CHEXPERT_UNMAPPED: dict[str, str] = {
    # Widened mediastinum as well as heart size: broader than Cardiomegaly, and ChestX-ray14 has no
    # mediastinal label.
    "Enlarged Cardiomediastinum": "wider than Cardiomegaly; no mediastinal label in ChestX-ray14",
    # Any increased opacity (oedema, consolidation, atelectasis, masses ...), not ChestX-ray14's Infiltration.
    "Lung Opacity": "any opacity, which is not ChestX-ray14's Infiltration",
    # A positive lesion may be a mass or a nodule, so it maps to neither.
    "Lung Lesion": "covers both Mass and Nodule, so it maps to neither",
    # Pleural thickening, fibrosis, calcification or plaques: a positive is not necessarily thickening.
    "Pleural Other": "thickening, plaques or calcification: broader than Pleural_Thickening",
    # ChestX-ray14 labels no bones.
    "Fracture": "ChestX-ray14 labels no fractures",
    # ChestX-ray14 labels no tubes, lines or devices.
    "Support Devices": "ChestX-ray14 labels no devices",
}
CXR14_UNMAPPED: dict[str, str] = {
    # CheXpert has Lung Opacity, a wider class; an Infiltration label says nothing about other opacities.
    "Infiltration": "not the same as CheXpert's wider Lung Opacity",
    # Mass and Nodule both fall under Lung Lesion, which also takes other lesions: one-way at best.
    "Mass": "part of CheXpert's Lung Lesion, which also holds nodules and other lesions",
    "Nodule": "part of CheXpert's Lung Lesion, which also holds masses and other lesions",
    # Parenchymal findings CheXpert does not label.
    "Emphysema": "CheXpert has no emphysema observation",
    "Fibrosis": "CheXpert has no (parenchymal) fibrosis observation",
    # CheXpert folds it into Pleural Other with plaques and calcification; one-way at best.
    "Pleural_Thickening": "one of several things CheXpert's Pleural Other stands for",
    "Hernia": "CheXpert has no hernia observation",
}

_TABLES: dict[tuple[str, str], dict[str, str]] = {
    ("chexpert", "chestxray14"): CHEXPERT_TO_CXR14,
    ("chestxray14", "chexpert"): {cxr14: chexpert for chexpert, cxr14 in CHEXPERT_TO_CXR14.items()},
}


def _table(source: str, target: str) -> dict[str, str]:
    for name in (source, target):
        if name not in SCHEMAS:
            raise Invalid(f"Unknown label schema '{name}'; known: {', '.join(SCHEMAS)}.")
    if source == target:
        return {f: f for f in SCHEMAS[source]}
    return _TABLES[(source, target)]


def translate(
    findings: tuple[str, ...] | list[str], source: str, target: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(findings in the target schema's order, source findings without a counterpart, in source order)."""
    table = _table(source, target)
    unknown = sorted(set(findings) - set(SCHEMAS[source]))
    if unknown:
        raise Invalid(f"Findings {unknown} are not in the '{source}' label schema.")
    mapped = {table[f] for f in findings if f in table}
    unmapped = tuple(f for f in SCHEMAS[source] if f in findings and f not in table)
    return tuple(f for f in SCHEMAS[target] if f in mapped), unmapped


def mapped_schema(source: str, target: str) -> tuple[str, ...]:
    """The target findings the table reaches from `source`, in target order (a translated set's schema)."""
    reached = set(_table(source, target).values())
    return tuple(f for f in SCHEMAS[target] if f in reached)
