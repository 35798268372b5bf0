"""`audit`: the memorisation audit (app.ml.metrics.memorisation) of a synthetic set against the real films its
generator was trained on. One MemorisationCheck row per audited generate, committed with the run's outcome;
the outputs keep the thresholds, the counts and the flagged pairs for the run page."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import AuditConfig
from app.jobs.tasks.evaluate import domain_extractor, seeded_subset
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.models import Image, ImageSet, MemorisationCheck

HOLDOUT_FRACTION = 0.2
CHUNK = 256  # films decoded at a time
MAX_LISTED = 48  # flagged pairs kept in the outputs for the run page; every flag is in the table


@dataclass
class Films:
    """Audited films of one set: database ids, patient ids, (N, D) features and (N, s, s) copies for SSIM."""

    ids: list[int]
    patients: list[str | None]
    features: np.ndarray
    small: np.ndarray

    def take(self, index: np.ndarray) -> Films:
        """The films at `index`."""
        pick = [int(i) for i in index]
        return Films(
            [self.ids[i] for i in pick],
            [self.patients[i] for i in pick],
            self.features[pick],
            self.small[pick],
        )


def rows_of(session: Session, set_id: int, *, limit: int, seed: int) -> list[Any]:
    """(id, sha256, patient_id) of up to `limit` images of a set (a seeded random subset when larger)."""
    rows = session.execute(
        select(Image.id, Image.sha256, Image.patient_id)
        .where(Image.image_set_id == set_id)
        .order_by(Image.id)
    ).all()
    rows = seeded_subset(list(rows), limit=limit, seed=seed)
    if not rows:
        raise ValueError(f"image set {set_id} has no images")
    return rows


def films_of(
    rows: list[Any],
    *,
    side: int,
    extract: Callable[[list[np.ndarray]], np.ndarray],
    check: Callable[[], None],
) -> Films:
    """Features and `side`-px copies of the rows' films, decoded CHUNK at a time so memory stays bounded."""
    store = BlobStore(get_settings().images_dir)
    features, small = [], []
    for start in range(0, len(rows), CHUNK):
        full = []
        for _, sha, _ in rows[start : start + CHUNK]:
            with PILImage.open(io.BytesIO(store.get(sha))) as img:
                grey = img.convert("L")
                full.append(np.asarray(grey))
                small.append(np.asarray(grey.resize((side, side), PILImage.Resampling.BOX)))
        features.append(np.asarray(extract(full)))
        check()
    return Films([r[0] for r in rows], [r[2] for r in rows], np.concatenate(features), np.stack(small))


def holdout_split(patients: list[str | None], *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held out) indices: a fifth of the patients (a film without a patient id is its own patient)."""
    keys = [p if p else f"film-{i}" for i, p in enumerate(patients)]
    unique = sorted(set(keys))
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(unique)[: max(1, round(len(unique) * HOLDOUT_FRACTION))].tolist())
    mask = np.array([k in held for k in keys])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def audit_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Features of training, held-out and generated films; thresholds; a flag per generate."""
    from app.ml.metrics.memorisation import audit

    cfg: AuditConfig = ctx.config  # type: ignore[assignment]
    pick = {"limit": cfg.max_images, "seed": cfg.seed}
    sets = {"generated": cfg.synthetic_set_id, "training": cfg.training_set_id}
    if cfg.holdout_set_id is not None:
        sets["holdout"] = cfg.holdout_set_id
    rows = {key: rows_of(session, set_id, **pick) for key, set_id in sets.items()}
    names = dict(session.execute(select(ImageSet.id, ImageSet.name)).all())
    session.rollback()  # no transaction held open while the features are computed

    ctx.progress(0.02, "loading the feature extractor")
    extractor = domain_extractor(cfg.classifier)
    films: dict[str, Films] = {}
    for i, key in enumerate(rows):
        ctx.progress(0.05 + 0.25 * i, f"features of the {key} films ({len(rows[key])})")
        films[key] = films_of(rows[key], side=cfg.ssim_size, extract=extractor.extract, check=ctx.check_abort)
    training, generated = films["training"], films["generated"]
    if "holdout" in films:
        holdout, rest = films["holdout"], np.arange(len(training.ids))
    else:
        rest, held = holdout_split(training.patients, seed=cfg.seed)
        if len(rest) == 0:
            raise ValueError("the training set is too small to hold films out; choose a held-out set")
        holdout = training.take(held)
    ctx.progress(0.8, "nearest training films and SSIM")
    # Calibration: held-out films against the rest; generates against every training film.
    result = audit(
        training.features[rest],
        training.small[rest],
        holdout.features,
        holdout.small,
        generated.features,
        generated.small,
        quantile=cfg.quantile,
        reference=(training.features, training.small),
    )
    ctx.check_abort()
    rows = []
    for k, image_id in enumerate(generated.ids):
        rows.append(
            MemorisationCheck(
                run_id=ctx.run_id,
                image_id=image_id,
                nearest_image_id=training.ids[int(result.nearest_index[k])],
                distance=float(result.distance[k]),
                ssim=float(result.ssim[k]),
                flagged=bool(result.flagged[k]),
            )
        )
    session.add_all(rows)
    flagged = [r for r in rows if r.flagged]
    flagged.sort(key=lambda r: r.distance)
    log.info("memorisation audit: %d of %d generates flagged", len(flagged), len(rows))
    return {
        "audit": {
            "synthetic_set_id": cfg.synthetic_set_id,
            "synthetic_set": names.get(cfg.synthetic_set_id),
            "training_set_id": cfg.training_set_id,
            "training_set": names.get(cfg.training_set_id),
            "holdout": names.get(cfg.holdout_set_id)
            if cfg.holdout_set_id is not None
            else f"{len(holdout.ids)} films of the training set's held-out patients",
            "n_generated": len(rows),
            "n_training": len(training.ids),
            "n_holdout": len(holdout.ids),
            "n_flagged": len(flagged),
            "quantile": cfg.quantile,
            "distance_threshold": round(result.distance_threshold, 6),
            "ssim_threshold": round(result.ssim_threshold, 6),
            "ssim_size": cfg.ssim_size,
            "extractor": extractor.name,
            "extractor_sha256": extractor.sha256,
            "flagged": [
                {
                    "image_id": r.image_id,
                    "nearest_image_id": r.nearest_image_id,
                    "distance": round(r.distance, 6),
                    "ssim": round(r.ssim, 4),
                }
                for r in flagged[:MAX_LISTED]
            ],
        }
    }
