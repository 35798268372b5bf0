"""`lco`: a labelled archive. Latent class optimisation (Segal et al. 2021) finds, per target label
vector, a latent whose film the classifier labels so; the films become a synthetic image set whose
images carry the labels and full provenance (target, achieved probabilities, success, steps, latent,
seed, generator and classifier with their hashes).

The classifier judges each stored 8-bit film again. An image's labels are its target when that
judgement meets the target by the margin ("success"); otherwise they are what the classifier sees
(probability at or above the threshold). The archive never claims a finding the classifier does not see.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.importers import ImportSpec, SourceImage, import_images
from app.domain.run_kinds import LcoRunConfig
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.models import Image
from app.persistence.snapshots import find_snapshot


def label_rows(session: Session, set_id: int, findings: list[str]) -> np.ndarray:
    """(N, F) 0/1 rows of a labelled set over `findings` (its joint label distribution)."""
    labels = session.scalars(select(Image.labels).where(Image.image_set_id == set_id).order_by(Image.id))
    return np.array([[f in (row or []) for f in findings] for row in labels], dtype=np.float32)


def archive_items(
    G, C, res, targets, thresholds, findings, *, meta: dict[str, Any], batch: int, margin: float
) -> Iterator[SourceImage]:
    """One import item per target: the film of its recorded latent, labelled and with provenance.

    The classifier judges the stored 8-bit film again (LCO saw G's float output), and labels, achieved
    probabilities and success come from that judgement: what the archive claims is what C sees in it.
    """
    import torch

    from app.ml.classifier.train import predict
    from app.ml.gan.sampling import to_uint8
    from app.ml.lco.optimise import reached, threshold_logits

    device = next(G.parameters()).device
    thr_logits = threshold_logits(torch.as_tensor(thresholds, dtype=torch.float32))
    for start in range(0, len(targets), batch):
        with torch.no_grad():
            films = to_uint8(G(res.z[start : start + batch].to(device)), G.cfg.pixel_range)  # (B, H, W)
        probs = predict(C, torch.from_numpy(films))  # (B, F) on the 8-bit films
        logits = torch.logit(torch.from_numpy(probs).float().clamp(1e-7, 1 - 1e-7))
        goal = torch.as_tensor(np.asarray(targets[start : start + batch]), dtype=torch.float32)
        ok_all = reached(logits, goal, thr_logits, margin).numpy()
        for k, pixels in enumerate(films):
            i = start + k
            ok = bool(ok_all[k])
            wanted = [f for f, t in zip(findings, targets[i], strict=True) if t]
            seen = [f for f, p, thr in zip(findings, probs[k], thresholds, strict=True) if p >= thr]
            yield SourceImage(
                name=f"lco-{meta['seed']}-{i:06d}",
                pixels=pixels,
                findings=tuple(wanted if ok else seen),
                provenance={
                    **meta,
                    "index": i,
                    "target": wanted,
                    "achieved": {f: round(float(p), 4) for f, p in zip(findings, probs[k], strict=True)},
                    "success": ok,
                    "optimiser_success": bool(res.success[i]),
                    "steps": int(res.steps[i]),
                    "attempts": int(res.attempts[i]),
                    "latent": [round(float(v), 6) for v in res.z[i]],
                },
            )


def lco_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Targets, optimisation, then the archive as one all-or-nothing import."""
    from app.ml.classifier.checkpoints import load_classifier, thresholds_of
    from app.ml.devices import best_device
    from app.ml.gan.checkpoints import load_snapshot
    from app.ml.lco import targets as tg
    from app.ml.lco.optimise import LcoConfig, optimise

    cfg: LcoRunConfig = ctx.config  # type: ignore[assignment]
    models_dir = get_settings().models_dir
    g_snap, c_snap = (
        find_snapshot(models_dir, cfg.model),
        find_snapshot(models_dir, cfg.classifier, kind="classifier"),
    )
    if g_snap is None or c_snap is None:
        raise ValueError("the generator or the classifier no longer exists")
    device = best_device()
    G, g_manifest = load_snapshot(g_snap.folder, device=device)
    C, c_manifest = load_classifier(c_snap.folder, device=device)
    findings, thresholds = list(c_manifest["findings"]), thresholds_of(c_manifest)
    if cfg.target_mode == "empirical":
        targets = tg.empirical(label_rows(session, cfg.label_set_id, findings), cfg.n, seed=cfg.seed)
    elif cfg.target_mode == "balanced":
        targets = tg.balanced(findings, cfg.n)
    else:
        targets = tg.explicit(cfg.combinations(), findings, cfg.n)
    session.rollback()  # the label read is done; optimisation holds no transaction open
    lco = LcoConfig(
        steps=cfg.steps,
        lr=cfg.lr,
        margin=cfg.margin,
        restarts=cfg.restarts,
        batch=cfg.batch,
        screen=cfg.screen,
    )
    log.info("LCO: %d targets (%s) for %s with %s", cfg.n, cfg.target_mode, cfg.model, cfg.classifier)
    res = optimise(
        G,
        C,
        targets,
        thresholds,
        lco,
        seed=cfg.seed,
        abort_fn=ctx.should_abort,
        progress_fn=lambda ok, n: ctx.progress(0.9 * ok / n, f"{ok:,} / {n:,} targets reached"),
    )
    ctx.check_abort()
    log.info("reached %d of %d targets; median steps %d", res.success.sum(), cfg.n, int(np.median(res.steps)))
    meta = {
        "method": "lco",
        "model": cfg.model,
        "model_sha256": g_manifest.get("sha256", ""),
        "classifier": cfg.classifier,
        "classifier_sha256": c_manifest["sha256"],
        "seed": cfg.seed,
        "lco": lco.to_dict(),
        "target_mode": cfg.target_mode,
        "job": ctx.run_id,
    }
    spec = ImportSpec(
        name=cfg.set_name.strip() or f"{cfg.model} LCO archive (run {ctx.run_id})",
        kind="synthetic",
        label_schema=tuple(findings),
        resolution=cfg.size or g_snap.resolution,
        source="lco",
        description=f"{cfg.n} LCO films of {cfg.model} labelled by {cfg.classifier} "
        f"({cfg.target_mode} targets), run {ctx.run_id}",
    )

    def progress(done: int) -> None:
        ctx.progress(0.9 + 0.1 * done / cfg.n, f"rendering {done:,} / {cfg.n:,}")
        ctx.check_abort()

    items = archive_items(
        G, C, res, targets, thresholds, findings, meta=meta, batch=cfg.batch, margin=cfg.margin
    )
    image_set = import_images(
        session, BlobStore(get_settings().images_dir), spec, items, actor_id=None, progress=progress
    )
    return {
        "image_set_id": image_set.id,
        "image_set": image_set.name,
        "images": image_set.image_count,
        "success_rate": round(float(res.success.mean()), 4),  # the optimiser's; each image has its own
    }
