"""Feature extractors that need outside weights: the Inception-v3 of FID, registered by an admin.

The official FID network is the TensorFlow Inception of 2015-12-05, converted for PyTorch and published in
torch-fidelity's GitHub releases; its sha256 begins with 6726825d. The app never downloads it: an admin
fetches the file on another machine and registers it here (upload page or `cxrlab register-inception`).
The file is stored under STORE_DIR/models/_extractors/inception-v3-compat/<sha256>.pth with a manifest. A
leading underscore keeps the folder out of the model namespace (a model could be called "extractors").

This module stays torch-free: it checks that an upload is a PyTorch file holding Inception's state dict by
reading the pickle's opcodes (nothing is unpickled). The worker re-hashes the file before every use and
loads it with torch.load(weights_only=True).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickletools
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from app.domain import audit_trail
from app.domain.errors import Invalid

INCEPTION = "inception-v3-compat"  # torch-fidelity's name for its TF-compatible Inception-v3
EXTRACTORS_DIR = "_extractors"
OFFICIAL_FILE = "weights-inception-2015-12-05-6726825d.pth"
OFFICIAL_RELEASES = "https://github.com/toshas/torch-fidelity/releases"
OFFICIAL_SHA256_PREFIX = "6726825d"
MISSING_HELP = (
    f"no Inception weights are registered: fetch {OFFICIAL_FILE} from torch-fidelity's GitHub releases "
    f"({OFFICIAL_RELEASES}) on a machine with internet access, then register it on the Feature "
    "extractors page (/extractors) or with `cxrlab register-inception FILE`"
)
MANIFEST = "manifest.json"
CHUNK = 1 << 20
# A few of the state dict's names, from the first layer to the classifier: a file without them cannot
# be loaded into torch-fidelity's network.
REQUIRED_KEYS = (
    "Conv2d_1a_3x3.conv.weight",
    "Mixed_5b.branch1x1.conv.weight",
    "Mixed_6e.branch7x7dbl_5.bn.running_var",
    "Mixed_7c.branch_pool.conv.weight",
    "fc.weight",
    "fc.bias",
)
# torch.save (pickle protocol 2) before the zip format: a pickled magic number comes first.
LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
MAX_PICKLE_BYTES = 16 << 20


class WeightsChanged(Exception):
    """The registered file's bytes no longer hash to what was registered."""


class NoWeights(Exception):
    """No Inception weights are registered."""


@dataclass(frozen=True)
class Registration:
    """The registered Inception weights, as the manifest records them."""

    path: Path
    sha256: str
    size: int
    original_name: str
    registered_by: str
    registered_at: str
    official: bool
    format: str


def folder(models_dir: Path) -> Path:
    """Where the Inception weights and their manifest live."""
    return models_dir / EXTRACTORS_DIR / INCEPTION


def how_to_obtain() -> dict[str, str]:
    """What the pages say about obtaining the official file."""
    return {"file": OFFICIAL_FILE, "sha256_prefix": OFFICIAL_SHA256_PREFIX, "releases": OFFICIAL_RELEASES}


def is_official(sha256: str) -> bool:
    """Whether a file is torch-fidelity's conversion of the 2015 TensorFlow weights (by its hash prefix)."""
    return sha256.lower().startswith(OFFICIAL_SHA256_PREFIX)


def registered(models_dir: Path) -> Registration | None:
    """The current registration, or None (also when its manifest or file went missing)."""
    target = folder(models_dir)
    try:
        m = json.loads((target / MANIFEST).read_text())
        path = target / m["file"]
        if not path.is_file():
            return None
        return Registration(
            path=path,
            sha256=m["sha256"],
            size=int(m["size"]),
            original_name=m["original_name"],
            registered_by=m["registered_by"],
            registered_at=m["registered_at"],
            official=bool(m["official"]),
            format=m.get("format", ""),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _strings(pickle_bytes: bytes | BinaryIO) -> tuple[set[str], set[str]]:
    """(string constants, globals) of one pickle, read from its opcodes without unpickling anything."""
    strings: set[str] = set()
    globals_: set[str] = set()
    recent: list[str] = []
    for op, arg, _ in pickletools.genops(pickle_bytes):
        if isinstance(arg, str) and ("UNICODE" in op.name or op.name.endswith("STRING")):
            strings.add(str(arg))
            recent = [*recent[-1:], str(arg)]
        elif op.name == "GLOBAL":
            globals_.add(str(arg))
        elif op.name == "STACK_GLOBAL":  # protocol 4: module and name were the last two strings
            globals_.add(" ".join(recent))
    return strings, globals_


def inspect_torch_file(path: Path) -> str:
    """'zip' or 'legacy' for a torch.save'd Inception state dict; Invalid for anything else."""
    with path.open("rb") as f:
        head = f.read(len(LEGACY_MAGIC))
    try:
        if head.startswith(b"PK\x03\x04"):
            fmt = "zip"
            with zipfile.ZipFile(path) as archive:
                pickles = [i for i in archive.infolist() if i.filename.count("/") == 1]
                pickles = [i for i in pickles if i.filename.endswith("/data.pkl")]
                if len(pickles) != 1 or pickles[0].file_size > MAX_PICKLE_BYTES:
                    raise Invalid("The zip file is not a PyTorch file (no single data.pkl).")
                strings, globals_ = _strings(archive.read(pickles[0]))
        elif head == LEGACY_MAGIC:
            fmt = "legacy"
            with path.open("rb") as f:
                for _ in range(3):  # magic number, protocol version, system info; then the object
                    for _op in pickletools.genops(f):
                        pass
                strings, globals_ = _strings(f)
        else:
            raise Invalid("The file is not a PyTorch weights file (torch.save).")
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise Invalid(f"The file is damaged or not a PyTorch weights file ({exc}).") from exc
    unexpected = {g for g in globals_ if not g.startswith("torch") and g != "collections OrderedDict"}
    if unexpected:
        raise Invalid(f"The file refers to code besides tensors ({', '.join(sorted(unexpected))[:200]}).")
    missing = [k for k in REQUIRED_KEYS if k not in strings]
    if missing:
        raise Invalid(
            f"The file is not the Inception-v3 state dict torch-fidelity expects (no {missing[0]})."
        )
    return fmt


@contextmanager
def _locked(base: Path) -> Iterator[None]:
    """One registration at a time: the swap of file and manifest, and the removal of the old file."""
    with (base / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(target: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".manifest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target / MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_if_empty(*folders: Path) -> None:
    for d in folders:
        try:
            d.rmdir()
        except OSError:  # not empty (an earlier registration), or gone
            return


def register(
    session: Session,
    models_dir: Path,
    source: BinaryIO,
    *,
    original_name: str,
    registered_by: str,
    actor_id: int | None,
) -> Registration:
    """Copy `source` in (hashing as it streams), check it, and make it the registered Inception weights.

    Readers see the old registration or the new one: the file gets its final name by a rename and the
    manifest is replaced atomically. A refused file leaves nothing behind."""
    base = models_dir / EXTRACTORS_DIR
    target = base / INCEPTION
    target.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target, prefix=".upload-", suffix=".tmp")
    tmp = Path(tmp_name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise Invalid("The file is empty.")
        fmt = inspect_torch_file(tmp)
        sha = digest.hexdigest()
        manifest = {
            "extractor": INCEPTION,
            "file": f"{sha}.pth",
            "sha256": sha,
            "size": size,
            "original_name": Path(original_name).name[:200] or "upload",
            "registered_by": registered_by,
            "registered_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "official": is_official(sha),
            "format": fmt,
        }
        with _locked(base):
            os.replace(tmp, target / manifest["file"])
            _write_manifest(target, manifest)
            for old in target.glob("*.pth"):  # the previous registration's file
                if old.name != manifest["file"]:
                    old.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_if_empty(target, base)
        raise
    audit_trail.record(
        session,
        actor_id=actor_id,
        action="register",
        entity="extractor",
        entity_id=INCEPTION,
        new={"sha256": sha, "size": size, "official": manifest["official"], "by": registered_by},
    )
    found = registered(models_dir)
    assert found is not None
    return found


def read_verified(models_dir: Path) -> tuple[Registration, bytes]:
    """The registered file's bytes, after checking they still hash to the registered sha256."""
    reg = registered(models_dir)
    if reg is None:
        raise NoWeights(MISSING_HELP[0].upper() + MISSING_HELP[1:] + ".")
    data = reg.path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != reg.sha256:
        raise WeightsChanged(
            f"The registered Inception weights file has changed since it was registered (sha256 "
            f"{reg.sha256[:12]}… registered, {found[:12]}… found); it is not used. Register the file again."
        )
    return reg, data
