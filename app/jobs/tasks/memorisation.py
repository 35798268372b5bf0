"""`memorisation`: the memorisation audit (app.ml.metrics.memorisation) of a synthetic set against every
real film its generator was trained on. One MemorisationCheck row per audited generate, committed with
the run's outcome; the outputs keep the thresholds, the counts and the flagged pairs for the run page.

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
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import MemorisationConfig
from app.jobs.tasks.features import Extractor, domain_extractor, seeded_subset
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.feature_cache import CacheKey, FeatureCache, images_digest
from app.persistence.models import MemorisationCheck
from app.persistence.repositories import image_sets, memorisation

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
    rows = image_sets.image_columns(session, set_id, "id", "sha256", "patient_id")
    rows = rows if limit is None else seeded_subset(list(rows), limit=limit, seed=seed)
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


@dataclass(frozen=True)
class _Sets:
    """The rows an audit reads, in id order: generates (capped), every training film, the held-out films;
    and, when the held-out films were split off the training set, where they sit in it."""

    generated: list[Any]
    training: list[Any]
    holdout: list[Any]
    held_index: np.ndarray  # (H,) positions of held-out films among the training rows (empty: own set)
    searchable: np.ndarray | None  # (N_train,) bool: the films the calibration may search (None: all)


def _sets(session: Session, cfg: MemorisationConfig) -> _Sets:
    """The generated, training and held-out rows; without a held-out set, patients split off the training."""
    generated = rows_of(session, cfg.synthetic_set_id, limit=cfg.max_images, seed=cfg.seed)
    training = rows_of(session, cfg.training_set_id, limit=None, seed=cfg.seed)  # never capped
    if cfg.holdout_set_id is not None:
        holdout = rows_of(session, cfg.holdout_set_id, limit=cfg.max_images, seed=cfg.seed)
        return _Sets(generated, training, holdout, np.zeros(0, dtype=np.int64), None)
    rest, held = holdout_split([r[2] for r in training], seed=cfg.seed)
    if len(rest) == 0:
        raise ValueError("the training set is too small to hold films out; choose a held-out set")
    held_index = np.array(seeded_subset(held.tolist(), limit=cfg.max_images, seed=cfg.seed))
    searchable = np.ones(len(training), dtype=bool)
    searchable[held] = False
    return _Sets(generated, training, [training[i] for i in held_index], held_index, searchable)


@dataclass(frozen=True)
class _Nearest:
    """Each generate's and each held-out film's nearest training film: (index, distance) per film."""

    g_idx: np.ndarray
    g_dist: np.ndarray
    h_idx: np.ndarray
    h_dist: np.ndarray
    calibration_searched: int  # training films the held-out films were searched among
    cached_blocks: int


def _nearest(
    ctx: RunContext,
    cfg: MemorisationConfig,
    extractor: Extractor,
    sets: _Sets,
    generated: Films,
    holdout: Films,
) -> _Nearest:
    """Search every training film, block by block, for the generates' and the held-out films' nearest.

    Generates are searched among every training film. The held-out films are searched among the same
    films, less the held-out patients' own when they were split off this set (a film is its own nearest
    neighbour); a generate still meets those films, since a copy of a held-out patient leaks as much.
    """
    from app.ml.metrics.memorisation import NearestSearch

    n_train = len(sets.training)
    g_search, h_search = NearestSearch(generated.features), NearestSearch(holdout.features)
    known = {int(i): holdout.features[k] for k, i in enumerate(sets.held_index)}
    cached = 0
    span = (0.25, 0.85)
    blocks = training_blocks(ctx, extractor, cfg.training_set_id, sets.training, known=known, span=span)
    for offset, block, hit in blocks:
        g_search.update(block, offset=offset)
        keep = None if sets.searchable is None else sets.searchable[offset : offset + len(block)]
        h_search.update(block, offset=offset, keep=keep)
        cached += hit
        done = offset + len(block)
        note = f"nearest training films: {done:,} of {n_train:,} searched"
        ctx.progress(span[0] + (span[1] - span[0]) * done / n_train, note)
    g_idx, g_dist = g_search.result()
    h_idx, h_dist = h_search.result()
    return _Nearest(g_idx, g_dist, h_idx, h_dist, h_search.searched, cached)


def _summary(
    cfg: MemorisationConfig,
    names: dict[int, str],
    extractor: Extractor,
    sets: _Sets,
    nearest: _Nearest,
    limits: Any,
    rows: list[MemorisationCheck],
) -> dict[str, Any]:
    """The run's outputs: what was searched, the calibrated thresholds, and the closest flagged generates."""
    n_train = len(sets.training)
    flagged = sorted((r for r in rows if r.flagged), key=lambda r: r.distance)
    return {
        "synthetic_set_id": cfg.synthetic_set_id,
        "synthetic_set": names.get(cfg.synthetic_set_id),
        "training_set_id": cfg.training_set_id,
        "training_set": names.get(cfg.training_set_id),
        "holdout": names.get(cfg.holdout_set_id)
        if cfg.holdout_set_id is not None
        else f"{len(sets.holdout)} films of the training set's held-out patients",
        "n_generated": len(rows),
        "n_training": n_train,  # every training film: the generates' search set
        "n_holdout": len(sets.holdout),
        "n_calibration_searched": nearest.calibration_searched,  # the same films, less held-out patients'
        "max_images": cfg.max_images,
        "feature_blocks": {"total": -(-n_train // SEARCH_BLOCK), "cached": nearest.cached_blocks},
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


def memorisation_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Features of generated and held-out films; every training film searched; thresholds; a flag each."""
    from app.ml.metrics.memorisation import Thresholds, pair_ssim

    cfg: MemorisationConfig = ctx.config  # type: ignore[assignment]
    sets = _sets(session, cfg)
    names = image_sets.names(session)
    session.rollback()  # no transaction held open while the features are computed

    ctx.progress(0.02, "loading the feature extractor")
    extractor = domain_extractor(cfg.classifier)
    side = cfg.ssim_size
    generated = films_of(ctx, sets.generated, extractor, side=side, span=(0.05, 0.15), what="generated")
    holdout = films_of(ctx, sets.holdout, extractor, side=side, span=(0.15, 0.25), what="held-out")
    nearest = _nearest(ctx, cfg, extractor, sets, generated, holdout)
    g_idx, h_idx = nearest.g_idx, nearest.h_idx

    ctx.progress(0.86, f"SSIM with the nearest training films ({len(np.unique(np.r_[g_idx, h_idx])):,})")
    near = small_copies(ctx, sets.training, np.r_[g_idx, h_idx], side=side)
    h_ssim = pair_ssim(holdout.small, np.stack([near[int(i)] for i in h_idx]))
    g_ssim = pair_ssim(generated.small, np.stack([near[int(i)] for i in g_idx]))
    limits = Thresholds.calibrate(nearest.h_dist, h_ssim, quantile=cfg.quantile)
    flags = limits.flags(nearest.g_dist, g_ssim)
    ctx.check_abort()
    rows = [
        MemorisationCheck(
            run_id=ctx.run_id,
            image_id=image_id,
            nearest_image_id=sets.training[int(g_idx[k])][0],
            distance=float(nearest.g_dist[k]),
            ssim=float(g_ssim[k]),
            flagged=bool(flags[k]),
        )
        for k, image_id in enumerate(generated.ids)
    ]
    memorisation.add_checks(session, rows)
    summary = _summary(cfg, names, extractor, sets, nearest, limits, rows)
    log.info(
        "memorisation audit: %d of %d generates flagged; %d training films searched (%d of %d feature "
        "blocks cached)",
        summary["n_flagged"],
        len(rows),
        len(sets.training),
        nearest.cached_blocks,
        summary["feature_blocks"]["total"],
    )
    return {"memorisation": summary}
