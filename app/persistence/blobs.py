"""Content-addressed store of rendered PNGs: store/images/ab/abcdef….png."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{64}$")


def _touch(target: Path) -> bool:
    """Mark an existing blob as in use now; False when there is none."""
    try:
        # Strictly later than before: with a coarse clock a plain touch could leave the mtime that its
        # creator recorded, and a failing creator would then take the blob for still its own.
        now = max(time.time_ns(), target.stat().st_mtime_ns + 1)
        os.utime(target, ns=(now, now))
        return True
    except FileNotFoundError:  # absent, or moved aside by a failing import a moment ago
        return False


class BlobStore:
    """PNG files named by their SHA-256; writes are atomic, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives."""
        if not _SHA.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / f"{sha256}.png"

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).exists()

    def put(self, sha256: str, data: bytes) -> int | None:
        """Store `data` under its hash. A new file returns its mtime in ns (the caller's claim on it);
        an existing one is touched, which tells a failing import that wrote it that it is in use now."""
        target = self.path(sha256)
        if _touch(target):
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            stamp = os.stat(tmp).st_mtime_ns  # read before the file has its name: no one else touched it
            while True:
                try:
                    # A link never replaces: when another import stored the same blob meanwhile, that
                    # file stays the other's, and two imports never both take one file for their own.
                    os.link(tmp, target)
                    return stamp
                except FileExistsError:
                    if _touch(target):
                        return None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def get(self, sha256: str) -> bytes:
        """The stored bytes; FileNotFoundError when missing."""
        return self.path(sha256).read_bytes()

    def remove_created(self, created: list[tuple[str, int]]) -> None:
        """Delete the blobs a failed import created, except those another import has used since.

        Identical images (the same model and seed sampled twice) share one blob. The blob is first moved
        aside, then its mtime is compared with the one it had when created: a touch by another import's
        put() before the move shows up there and the blob goes back; a put() after the move finds no
        file and writes it again. Either way the other import keeps its blob.
        """
        for sha, stamp in created:
            target = self.path(sha)
            grave = target.with_name(f".dead-{secrets.token_hex(8)}")
            try:
                os.rename(target, grave)
            except FileNotFoundError:
                continue
            if grave.stat().st_mtime_ns != stamp:
                os.replace(grave, target)
            else:
                grave.unlink(missing_ok=True)
