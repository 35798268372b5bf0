"""`train_gan`: a thin adapter from a run to app.ml.gan.train (progressive GAN, Karras et al. 2018).

Progress and metrics go to the run row and its log; resume state goes to the run's folder, so a retry
after a crash or a cancel continues from the last checkpoint. The finished EMA generator becomes a model
snapshot named by the config. With `fd_classifier` set, a measuring hook (app.ml.gan.monitor) records the
domain Fréchet distance at every checkpoint; the published manifest carries that history and the extractor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import TrainGanConfig
from app.jobs.tasks.patients import held_out, set_patients
from app.jobs.tasks.runner import Aborted, RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.models import ImageSet
from app.persistence.patient_records import write_patients
from app.persistence.repositories import image_sets

if TYPE_CHECKING:
    from app.ml.gan.monitor import MeasureFn
    from app.ml.gan.train import TrainingProgress


def _image_paths(session: Session, set_id: int) -> tuple[str, list[Path]]:
    store = BlobStore(get_settings().images_dir)
    image_set = session.get(ImageSet, set_id)
    if image_set is None:
        raise ValueError(f"image set {set_id} no longer exists")
    return image_set.name, [store.path(h) for h in image_sets.hashes(session, set_id)]


def _publish(
    snapshot: Path,
    name: str,
    provenance: dict[str, Any],
    *,
    grid: Path | None = None,
    patients: dict[str, Any] | None = None,
) -> Path:
    """Copy the finished snapshot (and its last sample grid) into the model store, appearing all at once;
    `patients` (write_patients' arguments) records whom it trained on beside the manifest."""
    models_dir = get_settings().models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / name
    if target.exists():
        raise FileExistsError(
            f"a model called '{name}' appeared while training; the snapshot stays in {snapshot}"
        )
    staging = models_dir / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(snapshot, staging)
    if grid is not None and grid.exists():
        shutil.copy2(grid, staging / "samples.png")
    if patients is not None:
        provenance = provenance | {"patients": write_patients(staging, **patients)}
    manifest = json.loads((staging / "manifest.json").read_text())
    (staging / "manifest.json").write_text(
        json.dumps({**manifest, **provenance}, indent=2, sort_keys=True) + "\n"
    )
    staging.rename(target)
    return target


def attempt_dir(run_dir: Path, attempt: int) -> Path:
    """This attempt's own folder, seeded with the newest earlier attempt's resume state and metrics.

    Each attempt writes only its own folder, so an attempt that was wrongly given up for stalled (and is
    still running somewhere) cannot overwrite the resume state of the attempt that replaced it.
    """
    out = run_dir / f"attempt-{attempt}"
    if not out.exists():
        staging = run_dir / f".attempt-{attempt}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for k in range(attempt - 1, 0, -1):
            earlier = run_dir / f"attempt-{k}"
            if (earlier / "resume.pt").exists():
                for name in ("resume.pt", "metrics.jsonl"):
                    if (earlier / name).exists():
                        shutil.copy2(earlier / name, staging / name)
                break
        staging.rename(out)
    return out


def _fd_hook(ctx: RunContext, cfg: TrainGanConfig) -> tuple[MeasureFn, dict[str, Any]]:
    """The measuring hook (with progress notes and log lines) and the extractor's description."""
    from app.jobs.tasks.features import domain_extractor, inception_extractor
    from app.ml.gan.monitor import Checkpoint, FrechetMonitor

    extractor = inception_extractor() if cfg.fd_inception else domain_extractor(cfg.fd_classifier)
    metric = "FID" if cfg.fd_inception else "domain Fréchet distance"
    monitor = FrechetMonitor(extractor.extract, n=cfg.fd_images, seed=cfg.seed)

    def measure(at: Checkpoint) -> dict[str, Any]:
        ctx.progress(at.images_seen / at.total, f"measuring the {metric} at {at.resolution} px")
        result = monitor(at)
        log.info(
            "%s at %s images, %d px: %.4g (real vs real %s, n %d)",
            metric,
            f"{at.images_seen:,}",
            at.resolution,
            result["fd"],
            "—" if result["baseline"] is None else f"{result['baseline']:.4g}",
            result["n"],
        )
        return result

    description = {
        "kind": extractor.kind,
        "metric": metric,
        "name": extractor.name,
        "sha256": extractor.sha256,
        "official": extractor.official,
        "image_size": extractor.resolution,
        "images": cfg.fd_images,
        "preprocessing": "EMA generates (fixed seed) and training films at the resolution being trained, "
        f"8-bit; then {extractor.preprocessing}",
    }
    return measure, description


def train_gan_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Train, report, publish the snapshot; resume when an earlier attempt left a checkpoint."""
    from app.ml.gan.checkpoints import RESUME_FILE
    from app.ml.gan.config import GanConfig, apply_preset
    from app.ml.gan.monitor import read_fd_history
    from app.ml.gan.schedule import TrainConfig
    from app.ml.gan.train import train

    cfg: TrainGanConfig = ctx.config  # type: ignore[assignment]
    set_name, paths = _image_paths(session, cfg.image_set_id)
    keys = set_patients(session, cfg.image_set_id)[0]  # the films' patients, in the same order
    excluded, exclusion = held_out(session, get_settings().models_dir, cfg)
    session.rollback()  # end this read now rather than hold a transaction open for the whole training
    if excluded:
        kept = [k not in excluded for k in keys]
        log.info("holding out %d films of test patients (%s)", kept.count(False), exclusion)
        paths = [p for p, k in zip(paths, kept, strict=True) if k]
        keys = [k for k in keys if k not in excluded]
        if not paths:
            raise ValueError("holding out those test patients leaves no film to train on")
    stages = cfg.resolution.bit_length() - 2
    gan = GanConfig(z_dim=cfg.z_dim, resolution=cfg.resolution, channels=tuple(cfg.channels[:stages]))
    tcfg = TrainConfig(
        resolution=cfg.resolution,
        fade_images=cfg.fade_images,
        stable_images=cfg.stable_images,
        final_stable_images=cfg.final_stable_images,
        batch_sizes=tuple(cfg.batch_sizes[:stages]),
        ema_decay=cfg.ema_decay,
        seed=cfg.seed,
        metrics_every=cfg.metrics_every,
        grid_every=cfg.grid_every,
        checkpoint_every=cfg.checkpoint_every,
    )
    gan, tcfg = apply_preset(cfg.preset, gan, tcfg)  # the authors' settings, or the engine's own
    out = attempt_dir(ctx.run_dir, ctx.attempt)
    resume = out / RESUME_FILE
    if resume.exists():
        log.info("resuming from %s", resume.relative_to(ctx.run_dir))
    log.info("training on '%s' (%d images) to %d px", set_name, len(paths), cfg.resolution)
    measuring = cfg.fd_classifier or cfg.fd_inception
    measure, extractor = _fd_hook(ctx, cfg) if measuring else (None, None)
    last_logged = [-1]

    def progress(p: TrainingProgress) -> None:
        ctx.report(p)
        metrics = p.metrics
        if "d_loss" in metrics and metrics.get("images_seen") != last_logged[0]:
            last_logged[0] = metrics.get("images_seen", -1)
            log.info("%s · d %.4g · g %.4g", p.note, metrics["d_loss"], metrics["g_loss"])

    result = train(
        gan,
        tcfg,
        paths,
        out,
        resume=resume if resume.exists() else None,
        progress_fn=progress,
        abort_fn=ctx.should_abort,
        measure_fn=measure,
    )
    if result.aborted or result.snapshot is None:
        raise Aborted()
    ctx.check_still_mine()  # a stalled-and-retried attempt must not publish over the live one
    provenance: dict[str, Any] = {"source": f"run {ctx.run_id}", "run_id": ctx.run_id}
    provenance |= {"data": set_name, "name": cfg.model_name, "preset": cfg.preset}
    outputs: dict[str, Any] = {"model": cfg.model_name, "images_seen": result.images_seen}
    outputs["training_patients"] = len(set(keys))
    if extractor is not None:
        # the whole history, earlier attempts' points included (attempt_dir carries metrics.jsonl over)
        history = read_fd_history(out / "metrics.jsonl")
        provenance |= {"fd_history": history, "fd_extractor": extractor}
        outputs["fd"] = history[-1] if history else None
    patients = {"learnt": keys, "image_set_id": cfg.image_set_id, "held_out": exclusion}
    _publish(result.snapshot, cfg.model_name, provenance, grid=out / "grid-latest.png", patients=patients)
    return outputs | {"metrics": result.metrics}
