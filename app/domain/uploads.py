"""An admin's upload as an image set: one zip, or loose image files, with an optional labels CSV, imported
all or nothing. The web form is one caller; anything that holds files as (name, binary stream) can call it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.orm import Session

from app.domain import importers, sources
from app.domain.errors import Invalid
from app.persistence.blobs import BlobStore
from app.persistence.models import ImageSet


@dataclass(frozen=True)
class UploadedFile:
    """One file of an upload: the name the sender gave it and its bytes as a stream."""

    filename: str
    stream: BinaryIO


class _Budget:
    """The bytes an upload may still read; reading past it is refused before the rest is read."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = self.left = max_bytes

    def read(self, upload: UploadedFile) -> bytes:
        data = upload.stream.read()
        self.left -= len(data)
        if self.left < 0:
            raise Invalid("The uploaded files are larger than the upload limit.")
        return data


def _items(
    files: Sequence[UploadedFile], labels_data: bytes | None, schema: tuple[str, ...], budget: _Budget
) -> list[sources.SourceImage]:
    """The images of a zip (read member by member) or of loose files (read within the budget)."""
    if len(files) == 1 and files[0].filename.lower().endswith(".zip"):
        try:
            archive = zipfile.ZipFile(files[0].stream)
        except zipfile.BadZipFile as exc:
            raise Invalid("The zip file is damaged or not a zip file.") from exc
        return sources.zip_images(archive, labels_data=labels_data, schema=schema, max_bytes=budget.max_bytes)
    loose = [(f.filename, budget.read(f)) for f in files]
    return sources.uploaded_images(loose, labels_data=labels_data, schema=schema)


def import_upload(
    session: Session,
    store: BlobStore,
    spec: importers.ImportSpec,
    files: Sequence[UploadedFile],
    *,
    labels_csv: UploadedFile | None,
    max_bytes: int,
    actor_id: int | None,
) -> ImageSet:
    """Import the upload as a new image set (the caller commits); Invalid names what is wrong with it."""
    files = [f for f in files if f.filename]  # a form's empty file field arrives without a name
    if not files:
        raise Invalid("Choose a zip file or image files to upload.")
    budget = _Budget(max_bytes)
    labels_data = budget.read(labels_csv) if labels_csv is not None and labels_csv.filename else None
    items = _items(files, labels_data, spec.label_schema, budget)
    try:
        return importers.import_images(session, store, spec, items, actor_id=actor_id)
    except zipfile.BadZipFile as exc:  # a member that fails its checksum is found only when read
        raise Invalid(f"The zip file is damaged: {exc}.") from exc
