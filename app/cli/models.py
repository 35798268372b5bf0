"""`cxrlab models …` and `cxrlab sample`: generator snapshots, the published weights, synthetic sets.

Snapshots live in STORE_DIR/models/<name>/ (imported or trained here) or in the repository's
model_store/<name>/ (bundled demo weights); each is generator.safetensors + config.json + manifest.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import click

from app.core.config import get_settings
from app.domain.importers import ImportSpec, SourceImage

BUNDLED = Path(__file__).resolve().parents[2] / "model_store"


def models_dir() -> Path:
    """Where imported and trained snapshots are kept."""
    return get_settings().store_dir / "models"


def resolve_model(name: str) -> Path:
    """The snapshot folder called `name`: the store's first, then the bundled ones."""
    for root in (models_dir(), BUNDLED):
        candidate = root / name
        if (candidate / "config.json").exists():
            return candidate
    known = ", ".join(sorted(n for n, _ in list_models())) or "none"
    raise click.UsageError(f"no model called '{name}' (known: {known})")


def list_models() -> list[tuple[str, Path]]:
    """(name, folder) of every snapshot, store first."""
    found: dict[str, Path] = {}
    for root in (BUNDLED, models_dir()):
        if root.is_dir():
            for d in sorted(root.iterdir()):
                if (d / "config.json").exists():
                    found[d.name] = d
    return sorted(found.items())


@click.group()
def models() -> None:
    """Generator snapshots."""


@models.command("list")
def models_list() -> None:
    """Every snapshot with its resolution and provenance."""
    for name, folder in list_models():
        manifest = (
            json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").exists() else {}
        )
        config = json.loads((folder / "config.json").read_text())
        source = manifest.get("source") or manifest.get("data") or ""
        click.echo(
            f"{name:<24} {config['resolution']:>5} px  {config['image_channels']} ch  {source}  ({folder})"
        )


@models.command("import-segal")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default="segal-2021", show_default=True, help="Name of the stored snapshot.")
def import_segal(file: Path, name: str) -> None:
    """Convert the authors' published generator (Final_Full_Model.pth), loading tensors only."""
    from app.ml.gan.checkpoints import save_snapshot
    from app.ml.gan.segal import UnsafeCheckpoint, load_segal_checkpoint

    target = models_dir() / name
    if target.exists():
        raise click.UsageError(f"{target} exists already; choose another --name")
    try:
        generator, manifest = load_segal_checkpoint(file)
    except (UnsafeCheckpoint, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    save_snapshot(generator, target, manifest={**manifest, "name": name, "source_file": file.name})
    click.echo(
        f"stored '{name}': {manifest['resolution']} px, {manifest['image_channels']} channels, "
        f"source sha256 {manifest['source_sha256'][:12]}… in {target}"
    )


def sample_items(model: str, folder: Path, n: int, *, seed: int, batch: int) -> Iterable[SourceImage]:
    """Generated films as import items, each recording the model, its hash, the seed and the latent index."""
    from app.ml.gan.checkpoints import load_snapshot
    from app.ml.gan.inference import prepare_for_inference
    from app.ml.gan.sampling import sample

    generator, manifest = load_snapshot(folder)
    # Scales folded into the weights once, upsample+conv fused: ~2x the plain network on CPU, same images.
    generator = prepare_for_inference(generator, precision="fp32")
    model_sha = manifest.get("sha256", "")
    for index, pixels in sample(generator, n, seed=seed, batch=batch):
        yield SourceImage(
            name=f"{model}-seed{seed}-{index:06d}",
            pixels=pixels,
            provenance={
                "model": model,
                "model_sha256": model_sha,
                "seed": seed,
                "latent_index": index,
                "job": None,
            },
        )


@click.command()
@click.option("--model", "model", required=True, help="Snapshot name (see `cxrlab models list`).")
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
