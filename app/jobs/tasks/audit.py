"""`audit`: the memorisation audit (app.ml.metrics.memorisation) of a synthetic set against every real film
its generator was trained on. One MemorisationCheck row per audited generate, committed with the run's
outcome; the outputs keep the thresholds, the counts and the flagged pairs for the run page.

`max_images` caps the generates audited and the held-out films calibrated on, never the training films
searched: a copy of any training film must be found. The training features stream through the search a
block at a time (each block cached on its own, so a cancelled or repeated audit does not extract again),
and only the nearest training films are decoded again for SSIM, so memory does not grow with the set.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import AuditConfig
from app.jobs.tasks.evaluate import Extractor, domain_extractor, seeded_subset
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.feature_cache import CacheKey, FeatureCache, images_digest
from app.persistence.models import Image, ImageSet, MemorisationCheck

HOLDOUT_FRACTION = 0.2
CHUNK = 256  # films decoded at a time
# Training films per cached feature block and per search step: (2048, D) features, 16 MiB at D = 1024.
SEARCH_BLOCK = 2048
MAX_LISTED = 48  # flagged pairs kept in the outputs for the run page; every flag is in the table


@dataclass
class Films:
    """Audited films of one set: database ids, (N, D) features and (N, s, s) copies for SSIM."""

    ids: list[int]
    features: np.ndarray
    small: np.ndarray


def rows_of(session: Session, set_id: int, *, limit: int | None, seed: int) -> list[Any]:
    """(id, sha256, patient_id) of a set's images by id: all of them, or up to `limit` (a seeded subset)."""
    rows = session.execute(
        select(Image.id, Image.sha256, Image.patient_id)
        .where(Image.image_set_id == set_id)
        .order_by(Image.id)
    ).all()
    rows = list(rows) if limit is None else seeded_subset(list(rows), limit=limit, seed=seed)
    if not rows:
        raise ValueError(f"image set {set_id} has no images")
    return rows


def _grey(store: BlobStore, sha: str) -> PILImage.Image:
    with PILImage.open(io.BytesIO(store.get(sha))) as img:
        return img.convert("L")


def _small(grey: PILImage.Image, side: int) -> np.ndarray:
    return np.asarray(grey.resize((side, side), PILImage.Resampling.BOX))


def films_of(
    ctx: RunContext, rows: list[Any], extractor: Extractor, *, side: int, span: tuple[float, float], what: str
) -> Films:
    """Features and `side`-px copies of the rows' films, decoded CHUNK at a time so memory stays bounded."""
    store = BlobStore(get_settings().images_dir)
    features, small = [], []
    lo, hi = span
    for start in range(0, len(rows), CHUNK):
        ctx.check_abort()
        full = []
        for _, sha, _ in rows[start : start + CHUNK]:
            grey = _grey(store, sha)
            full.append(np.asarray(grey))
            small.append(_small(grey, side))
        features.append(np.asarray(extractor.extract(full)))
        done = start + len(full)
        ctx.progress(
            lo + (hi - lo) * done / len(rows), f"features of the {what} films: {done:,}/{len(rows):,}"
        )
    return Films([r[0] for r in rows], np.concatenate(features), np.stack(small))


def training_blocks(
    ctx: RunContext,
    extractor: Extractor,
    set_id: int,
    rows: list[Any],
    *,
    known: dict[int, np.ndarray],
    span: tuple[float, float],
) -> Iterator[tuple[int, np.ndarray, bool]]:
    """(offset, (B, D) features, from the cache) of every training film, SEARCH_BLOCK films at a time.

    A block is a cache entry of its own (keyed by its films' hashes), so the whole (N, D) matrix, 400 MB
    for 100,000 films at D = 1024, is never held. `known` maps a row to features already extracted (the
    held-out films split off this set), which are not extracted twice. Progress moves across `span` as
    films are extracted, since that is most of the time when the block is not cached.
    """
    cache = FeatureCache(get_settings().store_dir)
    store = BlobStore(get_settings().images_dir)
    for offset in range(0, len(rows), SEARCH_BLOCK):
        block = rows[offset : offset + SEARCH_BLOCK]
        key = CacheKey(
            set_id,
            images_digest([r[1] for r in block]),
            extractor.resolution,
            extractor.preprocessing,
            extractor.sha256,
        )
        features = cache.get(key)
        if features is not None and len(features) == len(block):
            yield offset, features, True
            continue
        found: list[np.ndarray | None] = [known.get(offset + i) for i in range(len(block))]
        todo = [i for i, f in enumerate(found) if f is None]
        for start in range(0, len(todo), CHUNK):
            ctx.check_abort()
            part = todo[start : start + CHUNK]
            extracted = np.asarray(extractor.extract([np.asarray(_grey(store, block[i][1])) for i in part]))
            for i, f in zip(part, extracted, strict=True):
                found[i] = f
            done = offset + part[-1] + 1
            note = f"features of the training films: {done:,} of {len(rows):,} (then searched)"
            ctx.progress(span[0] + (span[1] - span[0]) * done / len(rows), note)
        features = np.stack(found)  # type: ignore[arg-type]
        cache.put(key, features)
        yield offset, features, False


def small_copies(ctx: RunContext, rows: list[Any], index: np.ndarray, *, side: int) -> dict[int, np.ndarray]:
    """`side`-px copies of the training films at `index` (the nearest neighbours), each decoded once."""
    store = BlobStore(get_settings().images_dir)
    out: dict[int, np.ndarray] = {}
    for k, i in enumerate(np.unique(index).tolist()):
        if k % CHUNK == 0:
            ctx.check_abort()
        out[i] = _small(_grey(store, rows[i][1]), side)
    return out


def holdout_split(patients: list[str | None], *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held out) indices: a fifth of the patients (a film without a patient id is its own patient)."""
    keys = [p if p else f"film-{i}" for i, p in enumerate(patients)]
    unique = sorted(set(keys))
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(unique)[: max(1, round(len(unique) * HOLDOUT_FRACTION))].tolist())
    mask = np.array([k in held for k in keys])
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def audit_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Features of generated and held-out films; every training film searched; thresholds; a flag each."""
    from app.ml.metrics.memorisation import NearestSearch, Thresholds, pair_ssim

    cfg: AuditConfig = ctx.config  # type: ignore[assignment]
    generated_rows = rows_of(session, cfg.synthetic_set_id, limit=cfg.max_images, seed=cfg.seed)
    training_rows = rows_of(session, cfg.training_set_id, limit=None, seed=cfg.seed)  # never capped
    searchable: np.ndarray | None = None  # (N_train,) bool: the films the calibration may search
    if cfg.holdout_set_id is not None:
        holdout_rows = rows_of(session, cfg.holdout_set_id, limit=cfg.max_images, seed=cfg.seed)
        held_index = np.zeros(0, dtype=np.int64)
    else:
        rest, held = holdout_split([r[2] for r in training_rows], seed=cfg.seed)
        if len(rest) == 0:
            raise ValueError("the training set is too small to hold films out; choose a held-out set")
        held_index = np.array(seeded_subset(held.tolist(), limit=cfg.max_images, seed=cfg.seed))
        holdout_rows = [training_rows[i] for i in held_index]
        searchable = np.ones(len(training_rows), dtype=bool)
        searchable[held] = False
    names = dict(session.execute(select(ImageSet.id, ImageSet.name)).all())
    session.rollback()  # no transaction held open while the features are computed

    ctx.progress(0.02, "loading the feature extractor")
    extractor = domain_extractor(cfg.classifier)
    side = cfg.ssim_size
    generated = films_of(ctx, generated_rows, extractor, side=side, span=(0.05, 0.15), what="generated")
    holdout = films_of(ctx, holdout_rows, extractor, side=side, span=(0.15, 0.25), what="held-out")

    # Generates are searched among every training film. The held-out films are searched among the same
    # films, less the held-out patients' own when they were split off this set (a film is its own nearest
    # neighbour); a generate still meets those films, since a copy of a held-out patient leaks as much.
    n_train = len(training_rows)
    g_search, h_search = NearestSearch(generated.features), NearestSearch(holdout.features)
    known = {int(i): holdout.features[k] for k, i in enumerate(held_index)}
    cached = 0
    span = (0.25, 0.85)
    blocks = training_blocks(ctx, extractor, cfg.training_set_id, training_rows, known=known, span=span)
    for offset, block, hit in blocks:
        g_search.update(block, offset=offset)
        keep = None if searchable is None else searchable[offset : offset + len(block)]
        h_search.update(block, offset=offset, keep=keep)
        cached += hit
        done = offset + len(block)
        note = f"nearest training films: {done:,} of {n_train:,} searched"
        ctx.progress(span[0] + (span[1] - span[0]) * done / n_train, note)
    g_idx, g_dist = g_search.result()
    h_idx, h_dist = h_search.result()

    ctx.progress(0.86, f"SSIM with the nearest training films ({len(np.unique(np.r_[g_idx, h_idx])):,})")
    near = small_copies(ctx, training_rows, np.r_[g_idx, h_idx], side=side)
    h_ssim = pair_ssim(holdout.small, np.stack([near[int(i)] for i in h_idx]))
    g_ssim = pair_ssim(generated.small, np.stack([near[int(i)] for i in g_idx]))
    limits = Thresholds.calibrate(h_dist, h_ssim, quantile=cfg.quantile)
    flags = limits.flags(g_dist, g_ssim)
    ctx.check_abort()
    rows = [
        MemorisationCheck(
            run_id=ctx.run_id,
            image_id=image_id,
            nearest_image_id=training_rows[int(g_idx[k])][0],
            distance=float(g_dist[k]),
            ssim=float(g_ssim[k]),
            flagged=bool(flags[k]),
        )
        for k, image_id in enumerate(generated.ids)
    ]
    session.add_all(rows)
    flagged = sorted((r for r in rows if r.flagged), key=lambda r: r.distance)
    log.info(
        "memorisation audit: %d of %d generates flagged; %d training films searched (%d of %d feature "
        "blocks cached)",
        len(flagged),
        len(rows),
        n_train,
        cached,
        -(-n_train // SEARCH_BLOCK),
    )
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
            "n_training": n_train,  # every training film: the generates' search set
            "n_holdout": len(holdout.ids),
            "n_calibration_searched": h_search.searched,  # the same films, less held-out patients' own
            "max_images": cfg.max_images,
            "feature_blocks": {"total": -(-n_train // SEARCH_BLOCK), "cached": cached},
            "n_flagged": len(flagged),
            "quantile": cfg.quantile,
            "distance_threshold": round(limits.distance, 6),
            "ssim_threshold": round(limits.ssim, 6),
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
