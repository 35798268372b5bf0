"""The model store: a model is a folder, STORE_DIR/models/<name>/ or the bundled model_store/<name>/.

Each model's folder holds its weights (generator.safetensors or classifier.safetensors), config.json
(the network) and manifest.json (provenance; "kind": "classifier" marks classifiers). This module only
reads the JSON files, so the web process can list models without torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUNDLED = Path(__file__).resolve().parents[2] / "model_store"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class StoredModel:
    """One stored model (a generator, or a classifier when its manifest says so)."""

    name: str
    folder: Path
    config: dict[str, Any]
    manifest: dict[str, Any]
    bundled: bool

    @property
    def resolution(self) -> int:
        """Side length the generator makes, in pixels."""
        return int(self.config.get("resolution", 0))

    @property
    def kind(self) -> str:
        """ "classifier" or "generator" (the manifest says; generators predate the field)."""
        return "classifier" if self.manifest.get("kind") == "classifier" else "generator"

    @property
    def grid(self) -> Path | None:
        """A sample grid saved beside the weights, if any."""
        path = self.folder / "samples.png"
        return path if path.exists() else None


def _read(folder: Path, bundled: bool) -> StoredModel:
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    config = json.loads((folder / "config.json").read_text())
    return StoredModel(folder.name, folder, config, manifest, bundled)


def list_models(models_dir: Path, kind: str | None = "generator") -> list[StoredModel]:
    """Stored models of `kind` (None: all) by name; one in the store hides a bundled one of the same name."""
    found: dict[str, StoredModel] = {}
    for root, bundled in ((BUNDLED, True), (models_dir, False)):
        if root.is_dir():
            for d in sorted(root.iterdir()):
                # Staging folders (".name.partial") and half-written files are not models (yet).
                if NAME_PATTERN.match(d.name) and (d / "manifest.json").exists():
                    try:
                        found[d.name] = _read(d, bundled)
                    except (OSError, ValueError):
                        continue
    return [found[n] for n in sorted(found) if kind is None or found[n].kind == kind]


def find_model(models_dir: Path, name: str, kind: str | None = "generator") -> StoredModel | None:
    """The model called `name` of `kind` (None: any), the store's before the bundled one, or None."""
    if not NAME_PATTERN.match(name):
        return None
    for root, bundled in ((models_dir, False), (BUNDLED, True)):
        if (root / name / "manifest.json").exists():
            try:
                found = _read(root / name, bundled)
            except (OSError, ValueError):
                return None
            return found if kind is None or found.kind == kind else None
    return None
