"""`evaluate`: how far a synthetic set lies from a real set in the features of a chosen extractor: the
project's classifier (domain Fréchet distance, no outside weights) or the registered Inception-v3 (FID).
Beside the distance: a real-versus-real baseline at the same n (n generates against real half A, real
half B against A) and their ratio; optionally FID∞, KID and precision/recall. Every result records n,
resolution, preprocessing and the extractor with its sha256. Features are cached per (set, images,
resolution, preprocessing, extractor).
"""

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
from app.domain import extractors
from app.domain.run_kinds import EvaluateConfig
from app.jobs.tasks.runner import RunContext, log
from app.ml.metrics.frechet import Matched, fid, matched_baseline
from app.persistence.blobs import BlobStore
from app.persistence.feature_cache import CacheKey, FeatureCache, images_digest
from app.persistence.models import Image, ImageSet
from app.persistence.snapshots import find_snapshot

CHUNK = 256  # films decoded at a time: memory stays bounded for large sets at 1024 px


@dataclass(frozen=True)
class Extractor:
    """A feature extractor as the evaluation reports it, and how to run it on a chunk of films."""

    kind: str  # "domain" or "inception"
    name: str
    sha256: str
    resolution: int  # the side length the network sees
    preprocessing: str
    official: bool | None  # Inception only: torch-fidelity's file of the 2015 TensorFlow weights
    extract: Callable[[list[np.ndarray]], np.ndarray]  # (B films (H, W) uint8) -> (B, D)


@dataclass(frozen=True)
class FilmSet:
    """The films of one set an evaluation uses (a seeded subset when the set is larger than the limit)."""

    id: int
    name: str
    resolution: int
    hashes: list[str]


def seeded_subset(items: list, *, limit: int, seed: int) -> list:
    """All of `items`, or `limit` of them drawn with `seed`, kept in their order."""
    if len(items) <= limit:
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]


def film_set(session: Session, set_id: int, *, limit: int, seed: int) -> FilmSet:
    """Up to `limit` of a set's images by content hash, in a fixed order."""
    image_set = session.get(ImageSet, set_id)
    if image_set is None:
        raise ValueError(f"image set {set_id} no longer exists")
    hashes = list(
        session.scalars(select(Image.sha256).where(Image.image_set_id == set_id).order_by(Image.id))
    )
    hashes = seeded_subset(hashes, limit=limit, seed=seed)
    if len(hashes) < 4:
        raise ValueError(f"image set '{image_set.name}' has {len(hashes)} images; an evaluation needs 4")
    return FilmSet(image_set.id, image_set.name, image_set.resolution, hashes)


def _decode(store: BlobStore, sha: str) -> np.ndarray:
    with PILImage.open(io.BytesIO(store.get(sha))) as img:
        return np.asarray(img.convert("L"))


def domain_extractor(classifier: str | None) -> Extractor:
    """The project's classifier: its penultimate features of films resized to its input size."""
    from app.ml.classifier.checkpoints import load_classifier
    from app.ml.devices import best_device
    from app.ml.metrics.domain import classifier_features

    snap = find_snapshot(get_settings().models_dir, classifier or "", kind="classifier")
    if snap is None:
        raise ValueError(f"classifier '{classifier}' no longer exists; choose another")
    model, manifest = load_classifier(snap.folder, device=best_device())
    size = int(model.cfg.image_size)
    return Extractor(
        kind="domain",
        name=snap.name,
        sha256=manifest["sha256"],
        resolution=size,
        preprocessing=f"stored 8-bit films, resized to {size} px (area or bilinear), scaled to [0, 1], "
        "normalised by the grey ImageNet mean and std",
        official=None,
        extract=lambda films: classifier_features(model, films),
    )


def inception_extractor() -> Extractor:
    """The registered Inception-v3, after checking the file still has the registered sha256."""
    from app.ml.devices import best_device
    from app.ml.metrics import inception

    reg, data = extractors.read_verified(get_settings().models_dir)
    net = inception.load_inception(data, device=best_device())
    return Extractor(
        kind="inception",
        name=inception.NAME,
        sha256=reg.sha256,
        resolution=inception.INPUT_SIZE,
        preprocessing=inception.PREPROCESSING,
        official=reg.official,
        extract=lambda films: inception.inception_features(net, films),
    )


def features_of(
    ctx: RunContext, cache: FeatureCache, extractor: Extractor, films: FilmSet, span: tuple[float, float]
) -> tuple[np.ndarray, bool]:
    """(N, D) features of a film set and whether they came from the cache; progress moves across `span`."""
    key = CacheKey(
        films.id, images_digest(films.hashes), extractor.resolution, extractor.preprocessing, extractor.sha256
    )
    cached = cache.get(key)
    if cached is not None:  # the key holds the digest of the image list: a hit has every film's row
        log.info("features of '%s' from the cache (%s)", films.name, cache.path(key).name)
        return cached, True
    store = BlobStore(get_settings().images_dir)
    lo, hi = span
    out = []
    for start in range(0, len(films.hashes), CHUNK):
        ctx.check_abort()
        chunk = films.hashes[start : start + CHUNK]
        out.append(np.asarray(extractor.extract([_decode(store, sha) for sha in chunk])))
        done = start + len(chunk)
        ctx.progress(lo + (hi - lo) * done / len(films.hashes), f"features of {films.name}: {done} films")
    features = np.concatenate(out)
    cache.put(key, features)
    return features, False


def _extras(cfg: EvaluateConfig, real_f: np.ndarray, syn_f: np.ndarray) -> dict[str, Any]:
    """FID∞ (with its points and fit, or why it was refused), KID and precision/recall, as asked."""
    from app.ml.metrics.fidelity import kid, precision_recall
    from app.ml.metrics.frechet import fid_infinity

    out: dict[str, Any] = {}
    if cfg.extrapolate:
        try:
            fit = fid_infinity(real_f, syn_f, seed=cfg.seed)
        except ValueError as exc:  # too few images for the feature dimension: say so, keep the rest
            out["fid_infinity_refused"] = str(exc)
        else:
            out["fid_infinity"] = round(fit.value, 6)
            points = [[n, round(v, 6)] for n, v in fit.points]
            out["fid_by_n"] = {"points": points, "slope": round(fit.slope, 6)}
    if cfg.kid:
        k = kid(real_f, syn_f, subsets=cfg.kid_subsets, subset_size=cfg.kid_subset_size, seed=cfg.seed)
        out["kid"] = {"mean": k.mean, "std": k.std, "subsets": k.subsets, "subset_size": k.subset_size}
    if cfg.precision_recall:
        pr = precision_recall(real_f, syn_f, k=3)
        out["precision_recall"] = {
            "precision": pr.precision,
            "recall": pr.recall,
            "f_score": pr.f_score,
            "k": pr.k,
        }
    return out


def baseline_result(matched: Matched) -> dict[str, Any]:
    """The matched-n comparison as the result stores it, with a note when real films were too few."""
    out: dict[str, Any] = {
        "baseline": round(matched.real_vs_real, 6),
        "synthetic_vs_real_matched": round(matched.synthetic_vs_real, 6),
        "ratio": round(matched.ratio, 4) if matched.ratio is not None else None,
        "n_matched": matched.n,
        "baseline_repeats": matched.repeats,
    }
    if matched.limited:
        out["baseline_note"] = (
            f"The real set has too few films for a baseline at all {matched.synthetic_available} generates "
            f"(it needs twice as many): every distance in the comparison uses {matched.n} per side."
        )
    return out


def evaluate_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Features of both sets (cached), distance, baseline at matched n, ratio, and the optional extras."""
    cfg: EvaluateConfig = ctx.config  # type: ignore[assignment]
    # Real films up to twice the synthetic limit: the baseline's two real halves each match the generates.
    real = film_set(session, cfg.real_set_id, limit=2 * cfg.max_images, seed=cfg.seed)
    synthetic = film_set(session, cfg.synthetic_set_id, limit=cfg.max_images, seed=cfg.seed)
    session.rollback()  # nothing to write: do not hold a transaction open through the features
    ctx.progress(0.02, "loading the feature extractor")
    extractor = inception_extractor() if cfg.extractor == "inception" else domain_extractor(cfg.classifier)
    cache = FeatureCache(get_settings().store_dir)
    real_f, real_hit = features_of(ctx, cache, extractor, real, (0.05, 0.45))
    syn_f, syn_hit = features_of(ctx, cache, extractor, synthetic, (0.45, 0.85))
    ctx.progress(0.85, "Fréchet distance and the baseline at matched n")
    distance = fid(real_f, syn_f)  # exact also with fewer films than feature dimensions
    matched = matched_baseline(real_f, syn_f, seed=cfg.seed)
    ctx.check_abort()
    ctx.progress(0.9, "further metrics")
    metric = "FID" if extractor.kind == "inception" else "domain FD"
    result: dict[str, Any] = {
        "extractor_kind": extractor.kind,
        "metric": metric,
        "distance": round(distance, 6),
        ("fid" if extractor.kind == "inception" else "domain_fd"): round(distance, 6),
        **baseline_result(matched),
        "n_real": len(real.hashes),
        "n_synthetic": len(synthetic.hashes),
        "resolution": extractor.resolution,
        "film_resolution": {"real": real.resolution, "synthetic": synthetic.resolution},
        "preprocessing": extractor.preprocessing,
        "extractor": extractor.name,
        "extractor_sha256": extractor.sha256,
        "official_weights": extractor.official,
        "feature_dim": int(real_f.shape[1]),
        "real_set": real.name,
        "synthetic_set": synthetic.name,
        "real_set_id": real.id,
        "synthetic_set_id": synthetic.id,
        "cache": {"real": "hit" if real_hit else "computed", "synthetic": "hit" if syn_hit else "computed"},
        **_extras(cfg, real_f, syn_f),
    }
    log.info(
        "%s %.4g; at n=%d %.4g against real-vs-real %.4g (%s)",
        metric,
        distance,
        matched.n,
        matched.synthetic_vs_real,
        matched.real_vs_real,
        extractor.name,
    )
    return {"evaluation": result}
