"""Features of image sets kept between evaluations: STORE_DIR/feature_cache/set-<id>/<key>.npz.

An entry is valid for exactly one (image set, list of its images' sha256 in order, resolution,
preprocessing, extractor sha256): change any of them and the key changes, so a stale entry is never read.
Entries are written to a temporary file and renamed, so a reader sees a whole file or none; two workers
computing the same entry both write the same features and the last rename wins.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FOLDER = "feature_cache"


def images_digest(sha256s: Sequence[str]) -> str:
    """One sha256 over the ordered list of image hashes (the rows of a feature matrix, in order)."""
    return hashlib.sha256("\n".join(sha256s).encode()).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """What a cached feature matrix depends on."""

    image_set_id: int
    images_digest: str
    resolution: int
    preprocessing: str
    extractor_sha256: str

    def digest(self) -> str:
        """The entry's file name (without .npz)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class FeatureCache:
    """Feature matrices (N, D) on disk under the store."""

    def __init__(self, store_dir: Path) -> None:
        self.root = store_dir / FOLDER

    def path(self, key: CacheKey) -> Path:
        """Where the entry for `key` lives (it may not exist)."""
        return self.root / f"set-{int(key.image_set_id)}" / f"{key.digest()}.npz"

    def get(self, key: CacheKey) -> np.ndarray | None:
        """The cached features, or None (missing, unreadable, or written for another key)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                if json.loads(str(data["key"])) != asdict(key):
                    return None
                return np.array(data["features"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None

    def put(self, key: CacheKey, features: np.ndarray) -> Path:
        """Store (N, D) features for `key` atomically."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, features=np.asarray(features), key=np.array(json.dumps(asdict(key), sort_keys=True)))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
