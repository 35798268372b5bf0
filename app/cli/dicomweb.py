"""`cxrlab images import dicomweb`: films from a PACS over DICOMweb, with a progress bar; run it again after
an interruption and it goes on from the films already fetched."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import click
from pydantic import ValidationError
from tqdm import tqdm

from app.cli.images import import_group
from app.core.config import get_settings
from app.domain.dicomweb_query import ImportDicomwebConfig


def _query(**values: object) -> ImportDicomwebConfig:
    try:
        return ImportDicomwebConfig.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'query'}: {e['msg']}" for e in exc.errors())
        raise click.BadParameter(problems) from None


def staging_folder(url: str, query: ImportDicomwebConfig) -> Path:
    """Where an import of `query` from `url` keeps its fetched films' manifest (the same for a rerun)."""
    digest = hashlib.sha256(f"{url}\n{query.model_dump_json()}".encode()).hexdigest()[:16]
    return get_settings().tmp_dir / "dicomweb" / digest


@import_group.command("dicomweb")
@click.argument("url", required=False)
@click.option("--name", required=True, help="Name of the new image set.")
@click.option("--modality", "modalities", default="CR,DX", show_default=True, help="Comma-separated.")
@click.option("--body-part", default="CHEST", show_default=True, help="Body Part Examined; '' for any.")
@click.option("--date-from", type=click.DateTime(["%Y-%m-%d"]), default=None, help="YYYY-MM-DD.")
@click.option("--date-to", type=click.DateTime(["%Y-%m-%d"]), default=None, help="YYYY-MM-DD.")
@click.option("--description", default="", help="Study description; * and ? are wildcards.")
@click.option(
    "--accessions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file of accession numbers (one per line or comma-separated): only these studies.",
)
@click.option("--views", type=click.Choice(["all", "frontal"]), default="all", show_default=True)
@click.option("--size", type=int, default=256, show_default=True, help="Rendered side length (px).")
@click.option("--limit", type=int, default=None, help="Import at most this many films.")
def import_dicomweb(
    url: str | None,
    name: str,
    modalities: str,
    body_part: str,
    date_from: date | None,
    date_to: date | None,
    description: str,
    accessions: Path | None,
    views: str,
    size: int,
    limit: int | None,
) -> None:
    """Chest films from a PACS (DICOMweb: QIDO-RS and WADO-RS; URL defaults to DICOMWEB_URL)."""
    from app.domain import dicomweb
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    settings = get_settings()
    url = url or settings.dicomweb_url
    if not url:
        raise click.UsageError("Give the PACS's DICOMweb URL, or set DICOMWEB_URL.")
    query = _query(
        set_name=name,
        modalities=modalities,
        body_part=body_part,
        date_from=date_from.date() if date_from else None,
        date_to=date_to.date() if date_to else None,
        study_description=description,
        accessions=accessions.read_text() if accessions else "",
        views=views,
        size=size,
        limit=limit,
    )
    folder = staging_folder(url, query)
    with session_scope() as session, tqdm(total=1000, unit="‰", desc=name) as bar:

        def progress(fraction: float, note: str) -> None:
            bar.set_postfix_str(note, refresh=False)
            bar.update(int(fraction * 1000) - bar.n)

        image_set, notes = dicomweb.import_from_pacs(
            session,
            BlobStore(settings.images_dir),
            dicomweb.connect(url),
            query,
            folder,
            actor_id=None,
            progress=progress,
        )
        set_id, count = image_set.id, image_set.image_count
    shutil.rmtree(folder, ignore_errors=True)  # committed: a rerun would be a new import
    click.echo(f"imported {count} films into '{name}' (real, id {set_id})")
    for note in notes:
        click.echo(f"note: {note}")
