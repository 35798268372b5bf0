"""The query of a DICOMweb import: which films of a PACS become an image set (a run kind's config).

The filters are the ones a radiology department selects chest films by: modality (CR, DX), the series'
Body Part Examined, the study date range, the study description and an accession list. They become QIDO-RS
query parameters (DICOM PS3.18 §10.6): StudyDate takes a YYYYMMDD-YYYYMMDD range open at either end,
StudyDescription takes * and ? wildcards. The PACS itself comes from settings (DICOMWEB_URL), never from this
config, so a form cannot point the server at another host.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from app.domain.run_fields import OptionalInt, RunConfig, blank_is_none

# An accession number is a DICOM SH: at most 16 characters, no backslash (the multi-value separator).
ACCESSION_MAX = 16


class ImportDicomwebConfig(RunConfig):
    """Import films from the PACS that settings name (DICOMWEB_URL) over DICOMweb: query with QIDO-RS,
    retrieve with WADO-RS, render through the one path. All or nothing; a retry goes on from the films
    already fetched."""

    set_name: str = Field(title="New image set", min_length=1, max_length=200)
    modalities: str = Field(
        "CR,DX",
        title="Modalities",
        pattern=r"^\s*[A-Za-z]{2}(\s*,\s*[A-Za-z]{2})*\s*$",
        description="Comma-separated DICOM modality codes: CR computed, DX digital radiography.",
    )
    body_part: str = Field(
        "CHEST",
        title="Body part examined",
        pattern=r"^[A-Za-z0-9 _]{0,16}$",
        description="A series' Body Part Examined; blank: any. Series that do not state it are kept.",
    )
    date_from: Annotated[date | None, BeforeValidator(blank_is_none)] = Field(None, title="Studies from")
    date_to: Annotated[date | None, BeforeValidator(blank_is_none)] = Field(None, title="Studies until")
    study_description: str = Field(
        "",
        title="Study description",
        pattern=r"^[^\\]{0,64}$",
        description="Matched by the PACS; * and ? are wildcards. Blank: any.",
    )
    accessions: str = Field(
        "",
        title="Accession numbers",
        max_length=200_000,
        description="Only these studies, separated by commas, spaces or lines. "
        "Blank: every study that matches.",
        json_schema_extra={"input": "textarea"},
    )
    views: Literal["all", "frontal"] = Field(
        "all", title="Views", description="frontal: only films whose View Position is PA or AP."
    )
    size: int = Field(256, ge=32, le=2048, title="Rendered side length (px)")
    limit: OptionalInt = Field(None, ge=1, le=1_000_000, title="Films at most", description="Blank: all.")

    @model_validator(mode="after")
    def _check(self) -> ImportDicomwebConfig:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("the first date is after the last")
        bad = [a for a in self.accession_list() if len(a) > ACCESSION_MAX or "\\" in a]
        if bad:
            raise ValueError(f"accession numbers have at most {ACCESSION_MAX} characters: {bad[0][:40]}")
        return self

    def modality_list(self) -> tuple[str, ...]:
        """The modality codes, upper case, each once."""
        return tuple(dict.fromkeys(m.strip().upper() for m in self.modalities.split(",") if m.strip()))

    def accession_list(self) -> tuple[str, ...]:
        """The accession numbers asked for, each once, in the order given."""
        return tuple(dict.fromkeys(a for a in re.split(r"[,\s]+", self.accessions) if a))

    def study_dates(self) -> str | None:
        """A QIDO-RS StudyDate range (YYYYMMDD-YYYYMMDD, open at either end), or None for any date."""
        if not (self.date_from or self.date_to):
            return None
        return "-".join(d.strftime("%Y%m%d") if d else "" for d in (self.date_from, self.date_to))

    def study_queries(self) -> list[dict[str, str]]:
        """QIDO-RS study-level filters: one query, or one per accession number."""
        base: dict[str, str] = {}
        if dates := self.study_dates():
            base["StudyDate"] = dates
        if self.study_description.strip():
            base["StudyDescription"] = self.study_description.strip()
        accessions = self.accession_list()
        if not accessions:
            return [base]
        return [{**base, "AccessionNumber": a} for a in accessions]
