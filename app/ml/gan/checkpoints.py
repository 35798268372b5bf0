"""PGGAN checkpoints: a model's files (safetensors + JSON) and exact resume state.

A model (its files' format is still called a snapshot) is the EMA generator only: `generator.safetensors`,
`config.json` (GanConfig.to_dict()) and `manifest.json` (the caller's fields plus the weights' sha256, images
seen and resolution). It loads with safetensors and json alone, so opening a snapshot never unpickles
anything.

Resume state is everything an uninterrupted run would still hold: G, D, EMA G, both Adam states, counters,
the sampler position and every RNG (torch CPU and CUDA, numpy, python `random`, the loop's noise
generator). It holds tensors and plain containers only and loads with torch.load(weights_only=True).

Every file is written atomically: a temporary file in the same directory, fsync, os.replace.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import IO, Any

import numpy as np
import safetensors.torch
import torch
from torch import nn

from app.ml.files import atomic_write, fsync_dir, write_json
from app.ml.gan.config import GanConfig
from app.ml.gan.networks import Generator

SNAPSHOT_FORMAT = "cxrlab-pggan-snapshot/1"
RESUME_FORMAT = "cxrlab-pggan-resume/1"
WEIGHTS_FILE = "generator.safetensors"
RESUME_FILE = "resume.pt"
PREVIOUS_RESUME_FILE = "resume-prev.pt"


def save_model(G: nn.Module, directory: Path, *, manifest: dict[str, Any], images_seen: int = 0) -> Path:
    """Write the (EMA) generator as a snapshot folder and return the folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg: GanConfig = G.cfg
    # clone: safetensors refuses tensors that share storage, and needs contiguous CPU memory
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in G.state_dict().items()}
    blob = safetensors.torch.save(tensors, metadata={"format": SNAPSHOT_FORMAT})
    atomic_write(directory / WEIGHTS_FILE, lambda f: f.write(blob))
    write_json(directory / "config.json", cfg.to_dict())
    full = {
        **manifest,
        "format": SNAPSHOT_FORMAT,
        "weights": WEIGHTS_FILE,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "images_seen": int(images_seen),
        "resolution": cfg.resolution,
        "image_channels": cfg.image_channels,
    }
    write_json(directory / "manifest.json", full)  # written last: its presence marks a whole snapshot
    return directory


def load_model(directory: Path, device: str | torch.device = "cpu") -> tuple[Generator, dict[str, Any]]:
    """(generator in eval mode without gradients, manifest) from a snapshot folder; no unpickling."""
    directory = Path(directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    cfg = GanConfig.from_dict(json.loads((directory / "config.json").read_text()))
    weights = directory / WEIGHTS_FILE
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != manifest["sha256"]:
        raise ValueError(f"{weights} does not match the sha256 in its manifest")
    with torch.random.fork_rng(devices=[]):  # building G draws init weights; leave the caller's RNG alone
        G = Generator(cfg)
    G.load_state_dict(safetensors.torch.load_file(weights, device="cpu"), strict=True)
    G.to(device).eval().requires_grad_(False)
    return G, manifest


def capture_rng() -> dict[str, Any]:
    """Every global RNG state as tensors and plain values (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos)}
        | {"has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_resume(run_dir: Path, state: dict[str, Any], *, keep_previous: bool = True) -> Path:
    """Write `state` as run_dir/resume.pt atomically; the one before becomes resume-prev.pt."""
    run_dir = Path(run_dir)
    path = run_dir / RESUME_FILE
    state = {"format": RESUME_FORMAT, **state}

    def write(f: IO[bytes]) -> None:
        torch.save(state, f)

    if keep_previous and path.exists():
        # write the new one to a temporary name first, so a crash never leaves neither file
        tmp = atomic_write(run_dir / ".resume-new.pt", write)
        os.replace(path, run_dir / PREVIOUS_RESUME_FILE)
        os.replace(tmp, path)
        fsync_dir(run_dir)
        return path
    return atomic_write(path, write)


def load_resume(path: Path) -> dict[str, Any]:
    """A resume state (on CPU) from a file or a run folder (its resume.pt, else resume-prev.pt)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESUME_FILE if (path / RESUME_FILE).exists() else path / PREVIOUS_RESUME_FILE
    # CPU: RNG states must stay there; load_state_dict moves weights and Adam moments to their device
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != RESUME_FORMAT:
        raise ValueError(f"{path} is not a PGGAN resume state")
    return state
