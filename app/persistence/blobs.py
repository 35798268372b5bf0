"""Content-addressed store of rendered PNGs: store/images/ab/abcdef….png."""

from __future__ import annotations

import os
import re
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

    def put(self, sha256: str, data: bytes) -> bool:
        """Store `data` under its hash; True when the file is new (a failed import then removes it)."""
        target = self.path(sha256)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def get(self, sha256: str) -> bytes:
        """The stored bytes; FileNotFoundError when missing."""
        return self.path(sha256).read_bytes()

    def remove(self, sha256s: list[str]) -> None:
        """Delete blobs written by an import that then failed."""
        for sha in sha256s:
            self.path(sha).unlink(missing_ok=True)
