"""`evaluate`: the domain Fréchet distance of a synthetic set to a real set (app.ml.metrics), with the
real-versus-real baseline and their ratio, and optionally FID∞. Every result records n, resolution,
preprocessing, the extractor and its sha256."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import EvaluateConfig
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.models import Image, ImageSet
from app.persistence.snapshots import find_snapshot


def films_of(session: Session, set_id: int, *, limit: int, seed: int) -> tuple[str, list[np.ndarray]]:
    """Up to `limit` stored films of a set (a seeded random subset when larger), as uint8 arrays."""
    store = BlobStore(get_settings().images_dir)
    name = session.get(ImageSet, set_id).name
    hashes = list(
        session.scalars(select(Image.sha256).where(Image.image_set_id == set_id).order_by(Image.id))
    )
    if len(hashes) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(hashes), size=limit, replace=False))
        hashes = [hashes[i] for i in keep]
    films = []
    for sha in hashes:
        with PILImage.open(io.BytesIO(store.get(sha))) as img:
            films.append(np.asarray(img.convert("L")))
    return name, films


def evaluate_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Features of both sets, distance, baseline, ratio (and FID∞ when asked)."""
    from app.ml.classifier.checkpoints import load_classifier
    from app.ml.devices import best_device
    from app.ml.metrics.domain import classifier_features
    from app.ml.metrics.frechet import FeatureStats, fid_infinity, frechet_distance, real_vs_real

    cfg: EvaluateConfig = ctx.config  # type: ignore[assignment]
    snap = find_snapshot(get_settings().models_dir, cfg.classifier, kind="classifier")
    if snap is None:
        raise ValueError(f"classifier '{cfg.classifier}' no longer exists")
    real_name, real = films_of(session, cfg.real_set_id, limit=cfg.max_images, seed=cfg.seed)
    syn_name, synthetic = films_of(session, cfg.synthetic_set_id, limit=cfg.max_images, seed=cfg.seed)
    session.rollback()
    model, manifest = load_classifier(snap.folder, device=best_device())
    ctx.progress(0.1, "features of the real set")
    real_f = classifier_features(model, real)
    ctx.check_abort()
    ctx.progress(0.5, "features of the synthetic set")
    syn_f = classifier_features(model, synthetic)
    ctx.check_abort()
    real_stats = FeatureStats.of(real_f)
    distance = frechet_distance(real_stats, FeatureStats.of(syn_f))
    baseline = real_vs_real(real_f, seed=cfg.seed)
    result: dict[str, Any] = {
        "domain_fd": round(distance, 6),
        "baseline": round(baseline, 6),
        "ratio": round(distance / baseline, 4) if baseline > 0 else None,
        "n_real": len(real),
        "n_synthetic": len(synthetic),
        "n_baseline_half": len(real) // 2,
        "resolution": model.cfg.image_size,
        "preprocessing": f"stored 8-bit films, resized to {model.cfg.image_size} px (area or bilinear), "
        "scaled to [0, 1], normalised by the grey ImageNet mean and std",
        "extractor": cfg.classifier,
        "extractor_sha256": manifest["sha256"],
        "feature_dim": int(real_f.shape[1]),
        "real_set": real_name,
        "synthetic_set": syn_name,
    }
    if cfg.extrapolate:
        ctx.progress(0.8, "FID∞")
        result["fid_infinity"] = round(fid_infinity(real_stats, syn_f, seed=cfg.seed).value, 6)
    log.info("domain Fréchet distance %.4g, real-vs-real %.4g", distance, baseline)
    return {"evaluation": result}
