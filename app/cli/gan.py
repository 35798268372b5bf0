"""`cxrlab gan train`: train a PGGAN on an image set or a folder, resumable, with a progress bar."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from app.gan_defaults import DEFAULT_PRESET, EMA_DECAY, PRESETS, SEGAL_BATCH_SIZES, Preset


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise click.BadParameter("expected comma-separated integers, e.g. 128,128,64,32") from exc


def image_set_paths(name: str) -> list[Path]:
    """The stored PNG of every image in the named set."""
    from sqlalchemy import select

    from app.core.config import get_settings
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope
    from app.persistence.models import Image
    from app.persistence.repositories import image_sets

    store = BlobStore(get_settings().images_dir)
    with session_scope() as session:
        image_set = image_sets.by_name(session, name)
        if image_set is None:
            raise click.UsageError(f"no image set called '{name}'")
        hashes = session.scalars(
            select(Image.sha256).where(Image.image_set_id == image_set.id).order_by(Image.id)
        )
        return [store.path(h) for h in hashes]


@click.group()
def gan() -> None:
    """Progressive Growing GAN."""


@gan.command("train")
@click.option("--images", "image_set", default=None, help="Name of an image set to train on.")
@click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Or a folder of images.",
)
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--resolution", type=int, default=64, show_default=True)
@click.option("--z-dim", type=int, default=512, show_default=True)
@click.option(
    "--channels",
    default="512,512,512,512,256,128,64,32,16",
    show_default=True,
    help="Feature maps per stage from 4 px.",
)
@click.option("--image-channels", type=click.Choice(["1", "3"]), default="1", show_default=True)
@click.option(
    "--kimg-fade", type=int, default=800, show_default=True, help="Thousands of images per fade-in."
)
@click.option("--kimg-stable", type=int, default=800, show_default=True, help="Thousands per stable phase.")
@click.option("--kimg-final", type=int, default=1200, show_default=True, help="Thousands at the last size.")
@click.option(
    "--batch",
    default=",".join(map(str, SEGAL_BATCH_SIZES)),
    show_default=True,
    help="Batch per stage, per GPU.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--ema",
    "ema_decay",
    type=float,
    default=EMA_DECAY,
    show_default=True,
    help="EMA decay per step; short runs need less (e.g. 0.99), or the EMA lags the new blocks.",
)
@click.option(
    "--preset",
    type=click.Choice(PRESETS),
    default=DEFAULT_PRESET,
    show_default=True,
    help="engine: Karras et al.'s settings, bf16 on CUDA; authors: as Segal et al.'s code (README).",
)
@click.option("--kimg-grid", type=int, default=100, show_default=True, help="Thousands between sample grids.")
@click.option("--kimg-checkpoint", type=int, default=100, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from OUT/resume.pt.")
def train_command(
    image_set: str | None,
    folder: Path | None,
    run_dir: Path,
    resolution: int,
    z_dim: int,
    channels: str,
    image_channels: str,
    kimg_fade: int,
    kimg_stable: int,
    kimg_final: int,
    batch: str,
    seed: int,
    ema_decay: float,
    preset: Preset,
    kimg_grid: int,
    kimg_checkpoint: int,
    resume: bool,
) -> None:
    """Train from 4 px to --resolution; under torchrun it trains with DistributedDataParallel."""
    from app.ml.gan.config import GanConfig, apply_preset
    from app.ml.gan.schedule import TrainConfig
    from app.ml.gan.train import train

    if (image_set is None) == (folder is None):
        raise click.UsageError("give exactly one of --images SET or --folder DIR")
    data = image_set_paths(image_set) if image_set else folder
    cfg = GanConfig(
        z_dim=z_dim, resolution=resolution, image_channels=int(image_channels), channels=_ints(channels)
    )
    tcfg = TrainConfig(
        resolution=resolution,
        fade_images=kimg_fade * 1000,
        stable_images=kimg_stable * 1000,
        final_stable_images=kimg_final * 1000,
        batch_sizes=_ints(batch),
        seed=seed,
        ema_decay=ema_decay,
        grid_every=kimg_grid * 1000,
        checkpoint_every=kimg_checkpoint * 1000,
    )
    cfg, tcfg = apply_preset(preset, cfg, tcfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 writes files
        (run_dir / "command.json").write_text(
            json.dumps(
                {"gan": cfg.to_dict(), "train": tcfg.to_dict(), "data": image_set or str(folder)}, indent=2
            )
        )
    resume_path = run_dir / "resume.pt" if resume else None
    if resume_path is not None and not resume_path.exists():
        raise click.UsageError(f"nothing to resume: {resume_path} does not exist")
    result = train(cfg, tcfg, data, run_dir, resume=resume_path)
    if result.snapshot is not None:
        click.echo(f"done: {result.images_seen:,} images; snapshot in {result.snapshot}")
    else:
        click.echo(f"stopped at {result.images_seen:,} images; resume with --resume")
