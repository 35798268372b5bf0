"""The MIMIC-CXR-JPG layout: the labels, metadata and split CSVs beside files/p<NN>/p<subject>/s<study>/.

Labels are per study (every film of a study gets its study's row); the view and the split are per film.
Names and provenance hold no path and no MIMIC id: subject, study and dicom ids become pseudonyms
(app.domain.identities) in the image's name, and reach the database only as keyed hashes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from app.domain.errors import Invalid
from app.domain.identities import pseudonym
from app.domain.importers import SourceImage
from app.domain.public_sets import (
    OBSERVATION_COLUMNS,
    check_choice,
    check_header,
    check_options,
    find_csv,
    labelled,
    limited,
    rows,
)

LABELLERS = ("chexpert", "negbio")
SPLITS = ("train", "validate", "test", "all")
LABEL_COLUMNS = ("subject_id", "study_id", *OBSERVATION_COLUMNS)
METADATA_COLUMNS = ("dicom_id", "subject_id", "study_id", "ViewPosition")
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
# The app's split convention (app.ml.classifier.split) holds out films marked "test" and draws its own
# validation films from the rest, so MIMIC's validate joins train there (its patients are still apart
# from test's); provenance["source_split"] keeps MIMIC's own name.
AS_SPLIT = {"train": "train", "validate": "train", "test": "test"}
VIEW_OF = {"PA": "frontal", "AP": "frontal", "LATERAL": "lateral", "LL": "lateral"}
# Ids become folder names, so nothing but their published form may pass (no '/', no '..').
_NUMBER, _DICOM = re.compile(r"\d{1,12}"), re.compile(r"[0-9a-fA-F-]{1,80}")
# Why a film was passed over, for the importer's report.
NO_LABELS, OTHER_VIEW, NOT_DOWNLOADED = "study without labels", "other view", "folder not downloaded"


def mimic_images(
    root: Path,
    *,
    labeller: str = "chexpert",
    uncertain: str,
    views: str = "frontal",
    split: str = "all",
    labels_as: str = "chexpert",
    limit: int | None = None,
    skipped: Counter[str] | None = None,
) -> Iterator[SourceImage]:
    """Films of a MIMIC-CXR-JPG folder, labelled by one labeller's CSV under an uncertainty policy.

    Uncertain labels (-1.0) as in app.domain.chexpert: "positive" counts them present, "negative"
    absent, "ignore" leaves them out but lists them under provenance["uncertain"] for a trainer to mask.
    frontal is ViewPosition PA or AP, lateral LATERAL or LL; "all" is both, and films of other views
    (oblique, decubitus, blank) are passed over. So are films whose study has no labels row, and films
    in a files/p<NN> folder not downloaded at all; `skipped` counts each reason. A missing file inside a
    folder that is there stops the import.
    """
    check_options(uncertain=uncertain, views=views, labels_as=labels_as, limit=limit)
    check_choice("labeller", labeller, LABELLERS)
    check_choice("split", split, SPLITS)
    if not root.is_dir():
        raise Invalid(f"{root} is not a folder.")
    paths = {
        "labels": find_csv(root, f"mimic-cxr-2.0.0-{labeller}"),
        "metadata": find_csv(root, "mimic-cxr-2.0.0-metadata"),
        "split": find_csv(root, "mimic-cxr-2.0.0-split"),
    }
    for key, columns in (("labels", LABEL_COLUMNS), ("metadata", METADATA_COLUMNS), ("split", SPLIT_COLUMNS)):
        check_header(paths[key], columns)
    if not (root / "files").is_dir():
        raise Invalid(f"{root / 'files'} is missing: the images are under files/p<NN>/p<subject>/s<study>/.")
    items = _images(
        root,
        paths,
        uncertain=uncertain,
        views=views,
        split=split,
        labels_as=labels_as,
        skipped=skipped if skipped is not None else Counter(),
    )
    return limited(items, limit)


def _images(
    root: Path,
    paths: dict[str, Path],
    *,
    uncertain: str,
    views: str,
    split: str,
    labels_as: str,
    skipped: Counter[str],
) -> Iterator[SourceImage]:
    labels = {(row["subject_id"], row["study_id"]): (where, row) for where, row in rows(paths["labels"])}
    splits = _splits(paths["split"])
    for where, row in rows(paths["metadata"]):
        dicom, subject, study = _ids(row, where)
        view = VIEW_OF.get(row["ViewPosition"].upper())
        if view is None:
            skipped[OTHER_VIEW] += 1
            continue
        if views != "all" and view != views:
            continue
        part = splits.get(dicom)
        if part is None:
            raise Invalid(f"{where}: dicom_id {dicom} has no row in {paths['split'].name}.")
        if split != "all" and part != split:
            continue
        if (subject, study) not in labels:
            skipped[NO_LABELS] += 1
            continue
        group = root / "files" / f"p{subject[:2]}"
        if not group.is_dir():
            skipped[NOT_DOWNLOADED] += 1
            continue
        file = group / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"
        if not file.is_file():
            raise Invalid(f"{where}: {file} is missing, though its folder {group.name} is there.")
        label_where, label_row = labels[(subject, study)]
        findings, provenance = labelled(label_row, label_where, policy=uncertain, labels_as=labels_as)
        pid, sid, uid = pseudonym("patient", subject), pseudonym("study", study), pseudonym("instance", dicom)
        yield SourceImage(
            name=f"{pid}/{sid}/{uid}.jpg",
            read=file.read_bytes,
            findings=findings,
            patient_id=subject,
            study_id=study,
            split=AS_SPLIT[part],
            provenance={"view": view, "projection": row["ViewPosition"], "source_split": part, **provenance},
        )


def _ids(row: dict[str, str], where: str) -> tuple[str, str, str]:
    """(dicom_id, subject_id, study_id), refused unless each has MIMIC's form."""
    dicom, subject, study = row["dicom_id"], row["subject_id"], row["study_id"]
    if not (_DICOM.fullmatch(dicom) and _NUMBER.fullmatch(subject) and _NUMBER.fullmatch(study)):
        raise Invalid(f"{where}: dicom_id, subject_id and study_id must be MIMIC's hex and numeric ids.")
    return dicom, subject, study


def _splits(path: Path) -> dict[str, str]:
    """dicom_id -> MIMIC's split name."""
    out = {}
    for where, row in rows(path):
        if row["split"] not in AS_SPLIT:
            raise Invalid(f"{where}: split is '{row['split']}', not train, validate or test.")
        out[row["dicom_id"]] = row["split"]
    return out
