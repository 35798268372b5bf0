"""The CheXpert layout: train.csv and valid.csv beside train/ and valid/ folders of patient/study/view files.

Names and provenance hold no path and no CheXpert id: "patient00001" and its studies become pseudonyms
(app.domain.identities) in the image's name, and reach the database only as keyed hashes.
"""

from __future__ import annotations

import re
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
    labelled,
    limited,
    rows,
)

COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATION_COLUMNS)
SPLITS: dict[str, tuple[str, ...]] = {"train": ("train",), "valid": ("valid",), "all": ("train", "valid")}
# The app's split convention (app.ml.classifier.split): films marked "test" are held out, and the
# classifier draws its validation films from the rest. CheXpert's own test set is not public; its valid
# set (radiologist-labelled studies of patients absent from train) is the held-out set papers report
# on, so it is this app's "test". Train stays "train".
AS_SPLIT = {"train": "train", "valid": "test"}
_VIEWS = {"frontal": "frontal", "lateral": "lateral"}
# CheXpert's file names say only the view, so they may stay in a stored name; anything else may not.
_FILE_NAME = re.compile(r"view\d+_(frontal|lateral)\.(jpe?g|png)", re.IGNORECASE)


def chexpert_images(
    root: Path,
    *,
    uncertain: str,
    views: str = "frontal",
    split: str = "all",
    labels_as: str = "chexpert",
    limit: int | None = None,
) -> Iterator[SourceImage]:
    """Films of a CheXpert folder (the one holding train.csv and valid.csv), labelled under a policy.

    Uncertain labels (-1.0): "positive" (U-Ones) counts them as present and "negative" (U-Zeros) as
    absent, both in the labels themselves; "ignore" (U-Ignore) leaves them out of the labels, like
    "negative", but lists them under provenance["uncertain"] so a trainer can mask them instead of
    learning them as absent. Blank cells are absent. CheXpert's valid split becomes the app's "test".
    """
    check_options(uncertain=uncertain, views=views, labels_as=labels_as, limit=limit)
    check_choice("split", split, tuple(SPLITS))
    if not root.is_dir():
        raise Invalid(f"{root} is not a folder.")
    csvs = []
    for part in SPLITS[split]:
        path = root / f"{part}.csv"
        if not path.is_file():
            raise Invalid(
                f"{path} is missing: point at the CheXpert folder that holds train.csv and valid.csv."
            )
        check_header(path, COLUMNS)
        csvs.append((part, path))
    items = _images(root, csvs, uncertain=uncertain, views=views, labels_as=labels_as)
    return limited(items, limit)


def _images(
    root: Path, csvs: list[tuple[str, Path]], *, uncertain: str, views: str, labels_as: str
) -> Iterator[SourceImage]:
    for part, path in csvs:
        for where, row in rows(path):
            view = _VIEWS.get(row["Frontal/Lateral"].lower())
            if view is None:
                raise Invalid(
                    f"{where}: 'Frontal/Lateral' is '{row['Frontal/Lateral']}', not Frontal or Lateral."
                )
            if views != "all" and view != views:
                continue
            file, (patient, study, base) = _locate(root, row["Path"], where)
            findings, provenance = labelled(row, where, policy=uncertain, labels_as=labels_as)
            yield SourceImage(
                name=f"{pseudonym('patient', patient)}/{pseudonym('study', study)}/{base}",
                read=file.read_bytes,
                findings=findings,
                patient_id=patient,
                study_id=study,
                split=AS_SPLIT[part],
                provenance={
                    "view": view,
                    "projection": row["AP/PA"],
                    "sex": row["Sex"],
                    "age": row["Age"],
                    "source_split": part,
                    **provenance,
                },
            )


def _locate(root: Path, value: str, where: str) -> tuple[Path, tuple[str, str, str]]:
    """The file a Path cell names, and (patient, study, file name) from it.

    The cell starts with the data set's own folder name ("CheXpert-v1.0-small/train/…"), which the
    user's copy may not share: it is tried against root's parent, then without that first part in root.
    """
    parts = [p for p in value.replace("\\", "/").split("/") if p]
    if value.startswith(("/", "\\")) or ".." in parts or len(parts) < 4:
        raise Invalid(
            f"{where}: Path '{value}' is not of the form <folder>/<split>/<patient>/<study>/<file>."
        )
    patient, study, base = parts[-3], parts[-2], parts[-1]
    if not (patient.startswith("patient") and study.startswith("study") and _FILE_NAME.fullmatch(base)):
        raise Invalid(
            f"{where}: Path '{value}' does not end in patient<N>/study<N>/view<N>_frontal.jpg "
            "(or _lateral.jpg), the layout CheXpert uses."
        )
    candidates = (root.parent.joinpath(*parts), root.joinpath(*parts[1:]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate, (patient, f"{patient}/{study}", base)
    raise Invalid(
        f"{where}: the image '{value}' is missing: neither {candidates[0]} nor {candidates[1]} exists."
    )
