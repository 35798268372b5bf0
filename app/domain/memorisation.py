"""A memorisation run's verdicts as CSV: per generate, its nearest training film, the feature distance,
the SSIM and whether it was flagged, with the run's thresholds on every row."""

from __future__ import annotations

import csv
import io

from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.persistence.models import Run
from app.persistence.repositories import memorisation

COLUMNS = (
    "image_id",
    "source_name",
    "nearest_training_image_id",
    "nearest_training_source_name",
    "feature_distance",
    "ssim",
    "flagged",
    "distance_threshold",
    "ssim_threshold",
)


def verdicts_csv(session: Session, run: Run) -> str:
    """A memorisation run's verdict per generate, nearest first, with the thresholds on every row."""
    a = (run.outputs or {}).get("memorisation")
    if run.kind != "memorisation" or not a:
        raise NotFound("This run has no memorisation audit.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for v in memorisation.verdicts(session, run.id):
        flagged = "true" if v.flagged else "false"
        writer.writerow(
            [v.image_id, v.source_name, v.nearest_id or "", v.nearest_name or "", f"{v.distance:.6g}"]
            + [f"{v.ssim:.6g}", flagged, a["distance_threshold"], a["ssim_threshold"]]
        )
    return out.getvalue()
