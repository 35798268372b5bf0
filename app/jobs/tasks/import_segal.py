"""`import_segal`: convert the published Segal et al. generator, read with weights_only, into a snapshot."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import ImportSegalConfig
from app.jobs.tasks.runner import RunContext, log, worker_name


def import_segal_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Load the file on this worker, refuse anything but tensors, store the converted generator."""
    from app.ml.gan.checkpoints import save_model
    from app.ml.gan.segal import load_segal_checkpoint

    cfg: ImportSegalConfig = ctx.config  # type: ignore[assignment]
    source = Path(cfg.path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"{source} is not a file on worker {worker_name()}")
    target = get_settings().models_dir / cfg.model_name
    if target.exists():
        raise FileExistsError(f"a model called '{cfg.model_name}' exists already")
    ctx.progress(0.1, "reading the checkpoint")
    generator, manifest = load_segal_checkpoint(source)
    ctx.check_abort()
    ctx.progress(0.8, "writing the snapshot")
    staging = target.parent / f".{cfg.model_name}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left by a crashed attempt
    save_model(generator, staging, manifest={**manifest, "name": cfg.model_name, "source_file": source.name})
    ctx.check_still_mine()
    staging.rename(target)
    log.info("stored %s: %s px, sha256 %s", cfg.model_name, manifest["resolution"], manifest["source_sha256"])
    return {"model": cfg.model_name, "source_sha256": manifest["source_sha256"]}
