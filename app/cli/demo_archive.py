"""The demo's labelled archive, shipped as data: `model_store/demo-archive/`.

Building it is latent class optimisation (Segal et al. 2021) of the bundled generator towards label rows of
the demo's real set, steered by the bundled classifier: 10 to 30 minutes on two CPU cores. So the films
ship as data, built once by `cxrlab demo --rebuild`: one PNG per film, exactly as the one rendering path
stored it, and `archive.json` with each film's labels and the provenance that `archive_items` gives an LCO
film (target, probabilities, success, steps, latent, seed, generator and classifier with their hashes),
plus the archive's own (the weights' sha256, the LCO settings, the command, how many targets were reached).
The demo imports it through the one import path in seconds, so the set looks exactly as a built one.

The index is `archive.json`, not `manifest.json`: a folder of model_store/ with a manifest is a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.domain.importers import ImportSpec, SourceImage
from app.persistence.model_store import BUNDLED

if TYPE_CHECKING:
    from app.ml.lco.optimise import LcoProgress

ARCHIVE = BUNDLED / "demo-archive"
INDEX = "archive.json"
FORMAT = "cxrlab-demo-archive/1"
WEIGHTS = {"generator": "generator.safetensors", "classifier": "classifier.safetensors"}
# The LCO settings of the demo's archive (LcoConfig fields; the rest keep their defaults).
LCO_SETTINGS = {"steps": 100, "lr": 0.1, "restarts": 1, "batch": 16}
SEED = 0  # of the targets' draw and of the latents
REBUILD_COMMAND = "cxrlab demo --rebuild"


class StaleArchive(click.ClickException):
    """The shipped archive does not belong to the bundled models (or its files are damaged)."""


def weights_sha256(model: str, role: str) -> str:
    """sha256 of a bundled model's weights file, as its manifest records it."""
    return hashlib.sha256((BUNDLED / model / WEIGHTS[role]).read_bytes()).hexdigest()


def read_index(folder: Path | None = None) -> dict[str, Any] | None:
    """The index of the archive in `folder` (default: the shipped one), or None when it holds none."""
    path = (folder or ARCHIVE) / INDEX
    return json.loads(path.read_text()) if path.exists() else None


def check(index: dict[str, Any], folder: Path, *, model: str, classifier: str, n: int) -> None:
    """Refuse an archive built from other weights, one with too few films, or one with a damaged file."""
    where = display_path(folder)
    if index.get("format") != FORMAT:
        raise StaleArchive(f"{where}/{INDEX} is not a {FORMAT} index; rebuild it with `{REBUILD_COMMAND}`.")
    for role, name in (("generator", model), ("classifier", classifier)):
        built = index[role]
        now = weights_sha256(name, role)
        if built["name"] != name or built["sha256"] != now:
            raise StaleArchive(
                f"The demo archive {where} was built from {role} {built['name']} (sha256 "
                f"{built['sha256'][:12]}…), but the bundled {name} has sha256 {now[:12]}…: it is stale. "
                f"Rebuild it with `{REBUILD_COMMAND}` (10 to 30 minutes on two CPU cores)."
            )
    if n > len(index["images"]):
        raise StaleArchive(
            f"The demo archive {where} holds {len(index['images'])} films and {n} were asked for; "
            f"`{REBUILD_COMMAND} --images {n}` builds that many."
        )
    for entry in index["images"][:n]:
        if hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest() != entry["sha256"]:
            raise StaleArchive(f"{where}/{entry['file']} does not match the sha256 in {INDEX}.")


def import_spec(index: dict[str, Any], folder: Path, *, name: str, n: int) -> ImportSpec:
    """The set of the archive's first `n` films, described as a built archive is, plus where it came from."""
    images = index["images"][:n]
    reached = sum(e["provenance"]["optimiser_success"] for e in images)
    built = index["built"]
    return ImportSpec(
        name=name,
        kind="synthetic",
        label_schema=tuple(index["label_schema"]),
        resolution=int(index["resolution"]),
        source="lco",
        description=f"{n} LCO films of {index['generator']['name']} labelled by "
        f"{index['classifier']['name']}; the optimiser reached {reached} targets"
        + (f" (the first {n} of its {len(index['images'])})" if n < len(index["images"]) else "")
        + f"; shipped in {display_path(folder)}, built by `{built['command']}` on {built['at'][:10]}",
    )


def import_items(index: dict[str, Any], folder: Path, *, n: int) -> Iterator[SourceImage]:
    """The archive's first `n` films as import items: the stored PNG, its labels, its provenance."""
    for entry in index["images"][:n]:
        path = folder / entry["file"]
        yield SourceImage(
            name=Path(entry["file"]).stem,
            read=path.read_bytes,
            findings=tuple(entry["findings"]),
            provenance=entry["provenance"],
        )


def target_rows(n_real: int, resolution: int, findings: list[str]):
    """(n_real, F) 0/1 label rows of the demo's real set: its phantoms in import order (seed 0, enriched)."""
    import numpy as np

    from app.ml import phantoms as ph

    films = ph.generate(n_real, size=resolution, seed=0, config=ph.DEMO_CONFIG)
    return np.array([[f in p.findings for f in findings] for p in films], dtype=np.float32)


def build(dest: Path, *, model: str, classifier: str, n: int, settings: dict[str, Any] | None = None) -> None:
    """LCO of `model` steered by `classifier` towards `n` label rows of the real set, written to `dest`.

    Written in a temporary folder beside `dest`, then swapped in: an interrupted build leaves the old
    archive (or none), never half of one.
    """
    import torch
    from tqdm import tqdm

    from app.domain.rendering import render_array
    from app.jobs.tasks.lco import archive_items
    from app.ml.classifier.checkpoints import load_classifier, thresholds_of
    from app.ml.gan.checkpoints import load_model
    from app.ml.lco import targets
    from app.ml.lco.optimise import LcoConfig, optimise

    started = time.monotonic()
    click.echo(f"    loading {model} and {classifier} from {display_path(BUNDLED)}")
    G, g_manifest = load_model(BUNDLED / model)
    C, c_manifest = load_classifier(BUNDLED / classifier)
    findings, thresholds = list(c_manifest["findings"]), thresholds_of(c_manifest)
    size = int(g_manifest["resolution"])
    click.echo(f"    drawing {n} targets from the label rows of the real set ({n} phantoms, seed 0)")
    goal = targets.empirical(target_rows(n, size, findings), n, seed=SEED)
    cfg = LcoConfig(**(settings or LCO_SETTINGS))

    with _LcoBar(n) as bar:
        found = optimise(G, C, goal, thresholds, cfg, seed=SEED, progress_fn=bar.show)
    meta = {"method": "lco", "model": model, "model_sha256": g_manifest["sha256"], "seed": SEED}
    meta |= {"classifier": classifier, "classifier_sha256": c_manifest["sha256"], "lco": cfg.to_dict()}
    meta |= {"target_mode": "empirical", "job": None}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        entries = []
        items = archive_items(
            G,
            C,
            found,
            goal,
            thresholds,
            findings,
            meta=meta,
            batch=cfg.batch,
            margin=cfg.margin,
            resolution=size,
        )
        with torch.no_grad():
            for item in tqdm(items, total=n, unit="img", desc="    rendering and labelling films"):
                png = render_array(item.pixels, size=size).png  # the bytes the import renders again
                (tmp / f"{item.name}.png").write_bytes(png)
                entries.append(
                    {
                        "file": f"{item.name}.png",
                        "sha256": hashlib.sha256(png).hexdigest(),
                        "findings": list(item.findings),
                        "provenance": item.provenance,
                    }
                )
        index = {
            "format": FORMAT,
            "description": f"{n} films of {model} steered by {classifier} (latent class optimisation) "
            "towards label rows of the demo's real set; the demo imports them as its synthetic set",
            "generator": {"name": model, "sha256": weights_sha256(model, "generator")},
            "classifier": {"name": classifier, "sha256": weights_sha256(classifier, "classifier")},
            "resolution": size,
            "label_schema": findings,
            "lco": cfg.to_dict(),
            "seed": SEED,
            "targets": {
                "mode": "empirical",
                "seed": SEED,
                "rows": f"the labels of the demo's real set: {n} phantoms (DEMO_CONFIG, seed 0, {size} px)",
            },
            "reached": {
                "optimiser": int(found.success.sum()),  # on G's float output, as LCO saw it
                "steerer": sum(e["provenance"]["steerer_success"] for e in entries),  # on the stored films
                "of": n,
            },
            "built": {
                "command": REBUILD_COMMAND + (f" --images {n}" if n != 120 else ""),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - started),
                "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}",
            },
            "images": entries,
        }
        (tmp / INDEX).write_text(_dumps(index))
        _swap_in(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    click.echo(
        f"    wrote {n} films to {display_path(dest)}; the optimiser reached {index['reached']['optimiser']} "
        f"of {n} targets ({index['built']['seconds']} s)"
    )


def _dumps(index: dict[str, Any]) -> str:
    """The index as JSON: the archive's fields indented, then one line per film (a readable diff)."""
    head = json.dumps({k: v for k, v in index.items() if k != "images"}, indent=1)
    films = ",\n".join("  " + json.dumps(e) for e in index["images"])
    return head[: -len("\n}")] + ',\n "images": [\n' + films + "\n ]\n}\n"


def _swap_in(tmp: Path, dest: Path) -> None:
    """Put the finished folder `tmp` at `dest`, moving any old archive aside first and deleting it after."""
    os.chmod(tmp, 0o755)  # mkdtemp makes it private
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _LcoBar:
    """LCO's progress in films settled (reached, or given up on in the last pass), which ends at n/n; it
    names the pass, batch and step `optimise` reports, so it moves from the first second."""

    def __init__(self, n: int) -> None:
        from tqdm import tqdm

        self.n, self.reached = n, 0
        self.bar = tqdm(total=n, unit="film", desc="    LCO: films settled")

    def __enter__(self) -> _LcoBar:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.bar.set_postfix_str(f"reached {self.reached} of {self.n}", refresh=True)
        self.bar.close()

    def show(self, p: LcoProgress) -> None:
        """Take one of `optimise`'s reports."""
        self.reached = p.reached
        self.bar.update(int(p.done) - self.bar.n)
        self.bar.set_postfix_str(
            f"pass {p.attempt + 1}/{p.passes}, batch {p.batch}/{p.batches}, step {p.step}/{p.steps}, "
            f"reached {p.reached}",
            refresh=False,
        )
        self.bar.refresh()
