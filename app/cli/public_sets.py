"""`cxrlab images import chexpert|mimic`: the public CheXpert and MIMIC-CXR-JPG layouts as image sets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from app.cli.images import import_group, run_import
from app.domain import chexpert, mimic, public_sets, schemas
from app.domain.importers import ImportSpec

_POLICY_WORDS = {
    "ignore": "left out of the labels and listed in provenance 'uncertain' for masking (U-Ignore)",
    "positive": "counted as present (U-Ones)",
    "negative": "counted as absent (U-Zeros)",
}


def _options(fn):
    """The options both layouts share (the split differs, so each command adds its own)."""
    for option in reversed(
        [
            click.option("--name", required=True, help="Name of the new image set."),
            click.option(
                "--uncertain",
                type=click.Choice(public_sets.POLICIES),
                default="ignore",
                show_default=True,
                help="What a -1.0 (uncertain) label becomes.",
            ),
            click.option(
                "--views", type=click.Choice(public_sets.VIEWS), default="frontal", show_default=True
            ),
            click.option(
                "--labels-as",
                type=click.Choice(public_sets.LABEL_SCHEMAS),
                default="chexpert",
                show_default=True,
                help="Label schema of the set: CheXpert's own, or ChestX-ray14's through the mapping table.",
            ),
            click.option(
                "--limit", type=click.IntRange(min=1), default=None, help="Import at most this many."
            ),
            click.option(
                "--size", type=int, default=256, show_default=True, help="Rendered side length (px)."
            ),
            click.option(
                "--kind", type=click.Choice(["real", "synthetic"]), default="real", show_default=True
            ),
        ]
    ):
        fn = option(fn)
    return fn


def label_schema(labels_as: str) -> tuple[str, ...]:
    """The set's schema: CheXpert's findings, or the ChestX-ray14 findings the mapping table reaches."""
    return schemas.mapped_schema("chexpert", labels_as)


def describe(
    layout: str, *, uncertain: str, views: str, split: str, labels_as: str, limit: int | None
) -> str:
    """The set's description: every choice that shaped its labels, recorded with the set."""
    parts = [
        layout,
        f"split {split}",
        f"views {views}",
        f"uncertain labels (-1.0) {_POLICY_WORDS[uncertain]}",
    ]
    if labels_as == "chexpert":
        parts.append("labels in CheXpert's 13 findings")
    else:
        pairs = ", ".join(f"{a} -> {b}" for a, b in schemas.CHEXPERT_TO_CXR14.items())
        parts.append(
            f"labels mapped to ChestX-ray14 ({pairs}); without a counterpart, kept only in provenance: "
            + ", ".join(schemas.CHEXPERT_UNMAPPED)
        )
    if limit:
        parts.append(f"first {limit}")
    return "; ".join(parts)


@import_group.command("chexpert")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--split",
    type=click.Choice(tuple(chexpert.SPLITS)),
    default="all",
    show_default=True,
    help="CheXpert's valid split is stored as the app's held-out 'test'.",
)
@_options
def import_chexpert(
    root: Path,
    split: str,
    name: str,
    uncertain: str,
    views: str,
    labels_as: str,
    limit: int | None,
    size: int,
    kind: str,
) -> None:
    """The CheXpert layout (train.csv, valid.csv, train/ and valid/ with patient/study/view files)."""
    items = chexpert.chexpert_images(
        root, uncertain=uncertain, views=views, split=split, labels_as=labels_as, limit=limit
    )
    spec = ImportSpec(
        name=name,
        kind=kind,
        label_schema=label_schema(labels_as),
        resolution=size,
        source="chexpert",
        description=describe(
            "CheXpert (valid as test)",
            uncertain=uncertain,
            views=views,
            split=split,
            labels_as=labels_as,
            limit=limit,
        ),
    )
    run_import(spec, items, total=limit)


@import_group.command("mimic")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labeller", type=click.Choice(mimic.LABELLERS), default="chexpert", show_default=True)
@click.option(
    "--split",
    type=click.Choice(mimic.SPLITS),
    default="all",
    show_default=True,
    help="MIMIC's validate is stored as 'train': the classifier draws its own validation films.",
)
@_options
def import_mimic(
    root: Path,
    labeller: str,
    split: str,
    name: str,
    uncertain: str,
    views: str,
    labels_as: str,
    limit: int | None,
    size: int,
    kind: str,
) -> None:
    """The MIMIC-CXR-JPG layout (mimic-cxr-2.0.0-*.csv[.gz] and files/p<NN>/p<subject>/s<study>/)."""
    skipped: Counter[str] = Counter()
    items = mimic.mimic_images(
        root,
        labeller=labeller,
        uncertain=uncertain,
        views=views,
        split=split,
        labels_as=labels_as,
        limit=limit,
        skipped=skipped,
    )
    spec = ImportSpec(
        name=name,
        kind=kind,
        label_schema=label_schema(labels_as),
        resolution=size,
        source="mimic-cxr-jpg",
        description=describe(
            f"MIMIC-CXR-JPG, {labeller} labels (per study)",
            uncertain=uncertain,
            views=views,
            split=split,
            labels_as=labels_as,
            limit=limit,
        ),
    )
    try:
        run_import(spec, items, total=limit)
    finally:  # also when nothing was left to import: the reasons say why
        for reason, count in sorted(skipped.items()):
            click.echo(f"note: {count} film{'s' if count != 1 else ''} passed over: {reason}")
