"""What the evaluation and the memorisation audit share: the films of a set they measure (a seeded subset
when a set is larger than the limit) and the feature extractors (the project's classifier, or the
registered Inception-v3) that turn films into features, cached per (set, images, resolution,
preprocessing, extractor).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import extractors
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore
from app.persistence.feature_cache import CacheKey, FeatureCache, images_digest
from app.persistence.model_store import find_model
from app.persistence.models import ImageSet
from app.persistence.repositories import image_sets

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
    hashes = seeded_subset(image_sets.hashes(session, set_id), limit=limit, seed=seed)
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

    snap = find_model(get_settings().models_dir, classifier or "", kind="classifier")
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
