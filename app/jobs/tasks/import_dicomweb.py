"""`import_dicomweb`: films from the PACS in settings into a new real set; a retry resumes the fetch."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain import dicomweb, runs
from app.domain.dicomweb_query import ImportDicomwebConfig
from app.jobs.tasks.runner import RunContext, log
from app.persistence.blobs import BlobStore

STAGING = "dicomweb-staging"  # in the run's folder, so each attempt of the run finds what the last fetched


def import_dicomweb_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Stage the films the query selects, then import them with the run's outcome, in one commit."""
    cfg: ImportDicomwebConfig = ctx.config  # type: ignore[assignment]
    settings = get_settings()
    if not settings.dicomweb_url:
        raise ValueError("no PACS is configured: set DICOMWEB_URL (and its credentials) for the workers")
    log.info("importing from the PACS into '%s' (attempt %s)", cfg.set_name, ctx.attempt)
    image_set, notes = dicomweb.import_from_pacs(
        session,
        BlobStore(settings.images_dir),
        dicomweb.connect(settings.dicomweb_url),
        cfg,
        ctx.run_dir / STAGING,
        actor_id=None,
        progress=ctx.progress,
        check_abort=ctx.check_abort,
    )
    for note in notes:
        log.info("note: %s", note)
    outputs: dict[str, Any] = {"image_set_id": image_set.id, "image_set": image_set.name}
    outputs["images"] = image_set.image_count
    if cfg.accession_list():
        # Kept no longer than the import needed them; the count says what the query was.
        runs.forget_config_fields(session, ctx.run_id, ("accessions",))
        outputs["accessions_asked"] = len(cfg.accession_list())
    return outputs
