"""Content-addressed store of rendered PNGs: store/images/ab/abcdef….png."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{64}$")


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
        try:
            os.utime(target)
            return None
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.stat().st_mtime_ns

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
