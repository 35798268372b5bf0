"""Films from a PACS over DICOMweb: list them (QIDO-RS), fetch and stage each (WADO-RS), import all at once.

An import of thousands of films over a hospital network takes long enough to be interrupted, so it has two
phases. Staging fetches each film, renders it through the one rendering path into the blob store (content
addressed, invisible until a row points at it) and appends one line to a manifest, after the blob is
written; an interrupted import that is started again skips every film its manifest holds. The import then
makes the set from the staged films in one transaction (`importers.import_images`, whose re-rendering of a
rendered film gives the same bytes), so a set appears whole or not at all.

Identifiers stay out (app.domain.identities): the manifest, the set and the blob store see the patient,
study and instance only as keyed hashes, and no other attribute of the DICOM header is kept but modality,
view position, body part and the image's geometry. Films that declare burned-in annotation are skipped: their
pixels may show a name.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import requests
from dicomweb_client import DICOMwebClient
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.decoding import ImageRejected, decode_dataset
from app.domain.dicomweb_query import ImportDicomwebConfig
from app.domain.errors import Invalid
from app.domain.identities import pseudonym
from app.domain.importers import ImportSpec, SourceImage, import_images
from app.domain.rendering import render_array
from app.persistence.blobs import BlobStore
from app.persistence.models import ImageSet

FRONTAL = frozenset({"PA", "AP"})
MANIFEST = "manifest.jsonl"
TIMEOUT_S = (10.0, 120.0)  # connect, read: a 30 MB film over a slow link still arrives
# DICOM JSON (PS3.18 F.2) keys attributes by tag: these are the ones the listing reads.
STUDY_UID, SERIES_UID, SOP_UID, BODY_PART = "0020000D", "0020000E", "00080018", "00180015"
FETCHERS = 4  # films in flight at once: a PACS answers each retrieve after a round trip and a disk read


@dataclass(frozen=True)
class InstanceRef:
    """Where one film is on the PACS: its study, series and SOP instance UIDs."""

    study: str
    series: str
    sop: str


def connect(url: str) -> DICOMwebClient:
    """A client for `url` with the credentials from settings (a bearer token, or a user and password)."""
    settings = get_settings()
    session = _WildcardSession()
    if settings.dicomweb_token is not None:
        session.headers["Authorization"] = f"Bearer {settings.dicomweb_token.get_secret_value()}"
    elif settings.dicomweb_username:
        password = settings.dicomweb_password.get_secret_value() if settings.dicomweb_password else ""
        session.auth = (settings.dicomweb_username, password)
    return DICOMwebClient(url.rstrip("/"), session=session, timeout=TIMEOUT_S)


class _WildcardSession(requests.Session):
    """Sends QIDO-RS wildcards as * and ?, not %2A and %3F: both may stand in a query unescaped (RFC
    3986), the client escapes them, and some servers (Orthanc 1.10) then match them literally."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.url and "?" in request.url:
            path, _, params = request.url.partition("?")
            request.url = path + "?" + params.replace("%2A", "*").replace("%3F", "?")
        return super().send(request, **kwargs)


def _first(item: dict[str, Any], tag: str) -> str | None:
    values = item.get(tag, {}).get("Value") or []
    return str(values[0]) if values else None


def list_instances(client: DICOMwebClient, query: ImportDicomwebConfig) -> list[InstanceRef]:
    """Every film the query selects, up to its limit, sorted by UIDs so a rerun lists the same (none fetched).

    One paged QIDO-RS query of all instances per modality (and accession number): the query matches the
    study's date, description and accession together with the series' modality (relational matching, as
    Orthanc and dcm4chee do), which costs a few requests where a query per study would cost thousands."""
    fields = ["StudyInstanceUID", "SeriesInstanceUID", "BodyPartExamined"]
    found: set[InstanceRef] = set()
    for filters in query.study_queries():
        for modality in query.modality_list():
            for instance in _search(
                client.search_for_instances, search_filters={**filters, "Modality": modality}, fields=fields
            ):
                uids = _first(instance, STUDY_UID), _first(instance, SERIES_UID), _first(instance, SOP_UID)
                if all(uids) and _body_matches(query.body_part, _first(instance, BODY_PART)):
                    found.add(InstanceRef(*uids))  # type: ignore[arg-type]
    refs = sorted(found, key=lambda r: (r.study, r.series, r.sop))
    return refs if query.limit is None else refs[: query.limit]


def _search(method: Callable[..., list[dict[str, Any]]], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """A QIDO-RS search with every page; an unreachable or refusing PACS becomes a clear error, without
    the request's URL or traceback (`from None`), which would carry the query's accession numbers."""
    try:
        return method(*args, get_remaining=True, **kwargs)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        hint = " (check DICOMWEB_USERNAME/PASSWORD or DICOMWEB_TOKEN)" if status in (401, 403) else ""
        raise Invalid(f"The PACS refused the query: HTTP {status}{hint}.") from None
    except requests.RequestException as exc:
        raise Invalid(f"The PACS could not be reached: {type(exc).__name__}.") from None


def _body_matches(wanted: str, stated: str | None) -> bool:
    """A series matches when no body part is asked for, or it states none, or it states the one asked."""
    return not wanted.strip() or not stated or stated.strip().upper() == wanted.strip().upper()


class Staging:
    """A folder whose manifest remembers each film already fetched (or skipped, with why)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / MANIFEST

    def entries(self) -> dict[str, dict[str, Any]]:
        """The manifest by film key; a last line cut short by a crash is ignored."""
        found: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                found[entry["key"]] = entry
        return found

    def add(self, entry: dict[str, Any]) -> None:
        """Append one film's line, on disk before the next film starts."""
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def stage(
    client: DICOMwebClient,
    refs: list[InstanceRef],
    staging: Staging,
    store: BlobStore,
    query: ImportDicomwebConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
    check_abort: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Fetch, render and stage every film not staged yet; the manifest's entries for `refs`, in order."""
    done = staging.entries()
    keys = [pseudonym("instance", ref.sop) or "" for ref in refs]
    missing = [
        (key, ref)
        for key, ref in zip(keys, refs, strict=True)
        if key not in done or ("sha256" in done[key] and not store.exists(done[key]["sha256"]))
    ]

    def fetch(item: tuple[str, InstanceRef]) -> dict[str, Any]:
        return _stage_one(item[0], _retrieve(client, item[1]), store, query)

    total, n = len(refs), len(refs) - len(missing)
    with ThreadPoolExecutor(FETCHERS) as pool:
        results = pool.map(fetch, missing)
        try:
            for entry in results:
                staging.add(entry)  # in the main thread only: one writer, whole lines
                done[entry["key"]] = entry
                n += 1
                if progress is not None:
                    progress(n, total)
                if check_abort is not None:
                    check_abort()
        finally:
            pool.shutdown(cancel_futures=True)  # an abort or a failed film stops the films not yet begun
    return [done[key] for key in keys]


def _retrieve(client: DICOMwebClient, ref: InstanceRef) -> pydicom.Dataset:
    try:
        return client.retrieve_instance(ref.study, ref.series, ref.sop)
    except requests.RequestException as exc:
        # Neither the exception's text nor its traceback (`from None`): they hold the film's URL, whose
        # UIDs would reach the run's stored error and log.
        status = exc.response.status_code if exc.response is not None else None
        why = f"HTTP {status}" if status else type(exc).__name__
        raise Invalid(f"The PACS did not deliver a film ({why}); retry to go on.") from None


def _stage_one(
    key: str, ds: pydicom.Dataset, store: BlobStore, query: ImportDicomwebConfig
) -> dict[str, Any]:
    """Render one film into the store; its manifest line (only pseudonyms and display attributes)."""
    view = str(ds.get("ViewPosition", "") or "").strip().upper()
    body = str(ds.get("BodyPartExamined", "") or "").strip().upper()
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES":
        return {"key": key, "skipped": "burned-in annotation (the pixels may show identifiers)"}
    if query.views == "frontal" and view not in FRONTAL:
        return {"key": key, "skipped": "not a frontal view (View Position PA or AP)"}
    if not _body_matches(query.body_part, body):
        return {"key": key, "skipped": "another body part"}
    try:
        rendered = render_array(decode_dataset(ds), size=query.size)
    except ImageRejected as exc:
        return {"key": key, "skipped": f"not rendered: {exc}"}
    store.put(rendered.sha256, rendered.png)
    return {
        "key": key,
        "sha256": rendered.sha256,
        "patient": pseudonym("patient", str(ds.get("PatientID", "") or "")),
        "study": pseudonym("study", str(ds.get("StudyInstanceUID", "") or "")),
        "provenance": {
            "modality": str(ds.get("Modality", "") or ""),
            "view": view,
            "body_part": body,
            "photometric": str(ds.get("PhotometricInterpretation", "") or ""),
            "rows": int(ds.get("Rows", 0) or 0),
            "columns": int(ds.get("Columns", 0) or 0),
        },
    }


def staged_items(entries: list[dict[str, Any]], store: BlobStore) -> Iterator[SourceImage]:
    """The staged films as import items, each named by its instance's pseudonym."""
    for entry in entries:
        if "sha256" not in entry:
            continue
        sha = entry["sha256"]
        yield SourceImage(
            name=entry["key"],
            read=lambda sha=sha: store.get(sha),
            patient_id=entry.get("patient"),
            study_id=entry.get("study"),
            provenance={"source": "dicomweb", **entry.get("provenance", {})},
        )


def skipped_note(entries: list[dict[str, Any]]) -> str:
    """'n films skipped: reason (count), …' for the set's description, or '' when none were."""
    reasons = Counter(e["skipped"] for e in entries if "skipped" in e)
    if not reasons:
        return ""
    listed = ", ".join(f"{why} ({n})" for why, n in reasons.most_common())
    return f"{sum(reasons.values())} films skipped: {listed}"


Progress = Callable[[float, str], None]  # (fraction of the whole import, what it is doing)


def import_from_pacs(
    session: Session,
    store: BlobStore,
    client: DICOMwebClient,
    query: ImportDicomwebConfig,
    staging_dir: Path,
    *,
    actor_id: int | None,
    progress: Progress | None = None,
    check_abort: Callable[[], None] | None = None,
) -> tuple[ImageSet, list[str]]:
    """List, stage and import the films `query` selects as one new real set; (the set, notes for the user).

    Started again with the same `staging_dir` after an interruption, it fetches only what is not staged."""
    report = progress or (lambda fraction, note: None)
    report(0.0, "asking the PACS which films match")
    refs = list_instances(client, query)
    if not refs:
        raise Invalid("Nothing was imported: the PACS has no films that match the query.")
    report(0.02, f"{len(refs):,} films match")

    def fetched(n: int, total: int) -> None:
        report(0.02 + 0.9 * n / total, f"{n:,} / {total:,} films fetched")

    staging = Staging(staging_dir)
    entries = stage(client, refs, staging, store, query, progress=fetched, check_abort=check_abort)
    staged = sum("sha256" in e for e in entries)
    note = skipped_note(entries)
    spec = ImportSpec(
        name=query.set_name,
        kind="real",
        label_schema=(),
        resolution=query.size,
        source="dicomweb",
        description="; ".join(filter(None, [f"DICOMweb import of {len(refs):,} films", note])),
    )

    def imported(n: int) -> None:
        report(0.92 + 0.08 * n / max(staged, 1), f"{n:,} / {staged:,} films imported")
        if check_abort is not None:
            check_abort()

    notes: list[str] = [note] if note else []
    image_set = import_images(
        session, store, spec, staged_items(entries, store), actor_id=actor_id, progress=imported, notes=notes
    )
    return image_set, notes
