"""`cxrlab models …` and `cxrlab sample`: stored generators, the published weights, synthetic sets.

Snapshots live in STORE_DIR/models/<name>/ (imported or trained here) or in the repository's
model_store/<name>/ (bundled demo weights); each is generator.safetensors + config.json + manifest.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from app.core.config import get_settings
from app.domain.importers import ImportSpec
from app.persistence.model_store import find_model, list_models


def models_dir() -> Path:
    """Where imported and trained models are kept."""
    return get_settings().models_dir


def resolve_model(name: str) -> Path:
    """The model folder called `name`: the store's first, then the bundled ones."""
    found = find_model(models_dir(), name)
    if found is None:
        known = ", ".join(s.name for s in list_models(models_dir())) or "none"
        raise click.UsageError(f"no model called '{name}' (known: {known})")
    return found.folder


@click.group()
def models() -> None:
    """Stored generators."""


@models.command("list")
def models_list() -> None:
    """Every stored generator with its resolution and provenance."""
    for snap in list_models(models_dir()):
        source = snap.manifest.get("source") or snap.manifest.get("data") or ""
        click.echo(
            f"{snap.name:<24} {snap.resolution:>5} px  {snap.config['image_channels']} ch  {source}  "
            f"({snap.folder})"
        )


@models.command("import-segal")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default="segal-2021", show_default=True, help="Name of the stored model.")
def import_segal(file: Path, name: str) -> None:
    """Convert the authors' published generator (Final_Full_Model.pth), loading tensors only."""
    from app.ml.gan.checkpoints import save_model
    from app.ml.gan.segal import UnsafeCheckpoint, load_segal_checkpoint

    target = models_dir() / name
    if target.exists():
        raise click.UsageError(f"{target} exists already; choose another --name")
    try:
        generator, manifest = load_segal_checkpoint(file)
    except (UnsafeCheckpoint, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    save_model(generator, target, manifest={**manifest, "name": name, "source_file": file.name})
    click.echo(
        f"stored '{name}': {manifest['resolution']} px, {manifest['image_channels']} channels, "
        f"source sha256 {manifest['source_sha256'][:12]}… in {target}"
    )


@click.command()
@click.option("--model", "model", required=True, help="Model name (see `cxrlab models list`).")
@click.option("--n", "n", type=int, default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--size", type=int, default=None, help="Rendered side length (default: the model's resolution)."
)
@click.option("--batch", type=int, default=16, show_default=True)
@click.option("--name", default=None, help="Name of the new synthetic image set.")
def sample(model: str, n: int, seed: int, size: int | None, batch: int, name: str | None) -> None:
    """Sample a generator into a synthetic image set (through the same rendering path as real images)."""
    from app.cli.images import run_import
    from app.jobs.tasks.sample import sample_items

    folder = resolve_model(model)
    config = json.loads((folder / "config.json").read_text())
    resolution = size or config["resolution"]
    spec = ImportSpec(
        name=name or f"{model} samples (seed {seed})",
        kind="synthetic",
        label_schema=(),
        resolution=resolution,
        source="sampling",
        description=f"{n} samples of {model}, seed {seed}",
    )
    run_import(spec, sample_items(model, folder, n, seed=seed, batch=batch), total=n)
