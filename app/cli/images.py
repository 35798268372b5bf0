"""`cxrlab images import …` and `cxrlab phantoms`: every importer as a command, with a progress bar."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click
from tqdm import tqdm

from app.core.config import get_settings
from app.domain import importers, labels, sources
from app.domain.importers import ImportSpec, SourceImage


def run_import(spec: ImportSpec, items: Iterable[SourceImage], *, total: int | None) -> None:
    """Import with a progress bar; one transaction, so a failure leaves nothing behind."""
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    store = BlobStore(get_settings().images_dir)
    notes: list[str] = []
    with session_scope() as session, tqdm(total=total, unit="img", desc=spec.name) as bar:
        image_set = importers.import_images(
            session,
            store,
            spec,
            items,
            actor_id=None,
            progress=lambda n: bar.update(n - bar.n),
            notes=notes,
        )
        set_id, count = image_set.id, image_set.image_count
    click.echo(f"imported {count} images into '{spec.name}' ({spec.kind}, id {set_id})")
    for note in notes:
        click.echo(f"note: {note}")


@click.group()
def images() -> None:
    """Image sets."""


@images.command("pseudonym")
@click.option("--kind", type=click.Choice(["patient", "study", "instance"]), required=True)
@click.argument("values", nargs=-1, required=True)
def show_pseudonyms(kind: str, values: tuple[str, ...]) -> None:
    """Print the pseudonym stored for each id (a patient id, a study id or UID, a file name or SOP UID)."""
    from app.domain.identities import pseudonym

    for value in values:
        click.echo(f"{value}\t{pseudonym(kind, value)}")  # type: ignore[arg-type]


@images.group("import")
def import_group() -> None:
    """Import an image set from local files."""


def _common(fn):
    fn = click.option("--name", required=True, help="Name of the new image set.")(fn)
    fn = click.option("--kind", type=click.Choice(["real", "synthetic"]), default="real", show_default=True)(
        fn
    )
    fn = click.option("--size", type=int, default=256, show_default=True, help="Rendered side length (px).")(
        fn
    )
    fn = click.option(
        "--schema", default="", help="Finding names, comma-separated (default: ChestX-ray14's)."
    )(fn)
    return fn


@import_group.command("folder")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--labels",
    "labels_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV with a file column and a findings column ('|'-joined).",
)
@_common
def import_folder(
    folder: Path, labels_csv: Path | None, name: str, kind: str, size: int, schema: str
) -> None:
    """A folder of PNG/JPEG/DICOM files, with an optional labels CSV."""
    finding_schema = labels.parse_schema(schema)
    items = sources.folder_images(folder, labels_csv=labels_csv, schema=finding_schema)
    spec = ImportSpec(
        name=name,
        kind=kind,
        label_schema=finding_schema,
        resolution=size,
        source="folder",
        description=f"folder {folder.name}",
    )
    run_import(spec, items, total=len(items))


@import_group.command("chestxray14")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--limit", type=int, default=None, help="Import at most this many images.")
@click.option("--split", type=click.Choice(["all", "train", "test"]), default="all", show_default=True)
@_common
def import_cxr14(
    root: Path, limit: int | None, split: str, name: str, kind: str, size: int, schema: str
) -> None:
    """The NIH ChestX-ray14 layout (Data_Entry_2017.csv, train_val_list.txt, test_list.txt, images_*/)."""
    finding_schema = labels.parse_schema(schema)
    items = sources.chestxray14_images(root, schema=finding_schema, limit=limit, split=split)
    spec = ImportSpec(
        name=name,
        kind=kind,
        label_schema=finding_schema,
        resolution=size,
        source="chestxray14",
        description=f"ChestX-ray14, split {split}" + (f", first {limit}" if limit else ""),
    )
    run_import(spec, items, total=limit)


def phantom_items(n: int, *, size: int, seed: int, demo: bool) -> Iterable[SourceImage]:
    """Phantom films as import items (generated lazily, one at a time)."""
    from app.ml import phantoms as ph

    config = ph.DEMO_CONFIG if demo else ph.DEFAULT_CONFIG
    for p in ph.generate(n, size=size, seed=seed, config=config):
        yield SourceImage(
            name=f"phantom-{seed}-{p.index:05d}",
            pixels=p.image,
            findings=p.findings,
            patient_id=p.patient_id,
            provenance={
                "generator": "phantoms",
                "seed": seed,
                "index": p.index,
                "config": "demo" if demo else "default",
            },
        )


def phantom_schema() -> tuple[str, ...]:
    """The finding names the phantom generator draws."""
    from app.ml import phantoms as ph

    return tuple(ph.FINDINGS)


@click.command()
@click.option("--n", "n", type=int, default=500, show_default=True)
@click.option("--size", type=int, default=256, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--name", default=None, help="Default: 'phantoms-seed<SEED>'.")
@click.option("--kind", type=click.Choice(["real", "synthetic"]), default="real", show_default=True)
@click.option("--enriched", is_flag=True, help="Raise finding prevalence (about half the films show one).")
def phantoms(n: int, size: int, seed: int, name: str | None, kind: str, enriched: bool) -> None:
    """Generate procedural chest radiograph phantoms as an image set."""
    import_phantoms(
        name=name or f"phantoms-seed{seed}", kind=kind, n=n, size=size, seed=seed, enriched=enriched
    )


def import_phantoms(
    *, name: str, kind: str, n: int, size: int, seed: int, enriched: bool, note: str = ""
) -> None:
    """Generate `n` phantoms and import them as one image set."""
    spec = ImportSpec(
        name=name,
        kind=kind,
        label_schema=phantom_schema(),
        resolution=size,
        source="phantoms",
        description=f"{n} procedural phantoms, seed {seed}" + (", enriched" if enriched else "") + note,
    )
    run_import(spec, phantom_items(n, size=size, seed=seed, demo=enriched), total=n)
