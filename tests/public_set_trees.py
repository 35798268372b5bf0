"""Tiny CheXpert and MIMIC-CXR-JPG folder trees, written in code: a few 32 px JPEGs and the CSVs."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
from PIL import Image

from app.domain.schemas import CHEXPERT_FINDINGS

OBSERVATIONS = ("No Finding", *CHEXPERT_FINDINGS)
CHEXPERT_FOLDER = "CheXpert-v1.0-small"

# (split, patient, study, file, sex, age, Frontal/Lateral, AP/PA, {observation: value})
CHEXPERT_ROWS = [
    ("train", "patient00001", "study1", "view1_frontal.jpg", "Female", "68", "Frontal", "AP",
     {"Cardiomegaly": "1.0", "Lung Lesion": "1.0", "Pleural Effusion": "-1.0", "Support Devices": "1.0"}),
    ("train", "patient00001", "study1", "view2_lateral.jpg", "Female", "68", "Lateral", "",
     {"Cardiomegaly": "1.0", "Pleural Effusion": "-1.0"}),
    ("train", "patient00002", "study1", "view1_frontal.jpg", "Male", "40", "Frontal", "PA",
     {"No Finding": "1.0", "Edema": "0.0"}),
    ("train", "patient00002", "study2", "view1_frontal.jpg", "Male", "41", "Frontal", "PA",
     {"Atelectasis": "1.0", "Pneumonia": "-1.0", "Lung Opacity": "-1.0"}),
    ("valid", "patient64541", "study1", "view1_frontal.jpg", "Male", "73", "Frontal", "AP",
     {"Lung Opacity": "1.0", "Pleural Effusion": "1.0", "Edema": "0.0"}),
]  # fmt: skip
CHEXPERT_IDS = ("patient00001", "patient00002", "patient64541", CHEXPERT_FOLDER, "train/", "valid/")

# MIMIC: (subject, study, dicom, ViewPosition, split); the labels are per study below.
MIMIC_FILMS = [
    ("10000032", "50414267", "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "PA", "train"),
    ("10000032", "50414267", "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "LATERAL", "train"),
    ("10000032", "53189527", "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab", "AP", "validate"),
    ("10000032", "53189527", "e084de3b-be89b11e-20fe3f9f-9c8d8dfe-4cfd202c", "AP AXIAL", "validate"),
    ("10000764", "57375967", "096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", "PA", "test"),
    ("10000898", "50771383", "f0fc1d05-2a8b9ad9-a4d6b3a8-ef4c3e52-ad6c7b8e", "PA", "train"),  # unlabelled
    ("11000011", "51029426", "8e3b6f2a-1cf4e8d4-0a5c6fd7-5f2e7b61-7d5ac1a0", "PA", "train"),  # not here
]
MIMIC_LABELS = {
    # (subject, study): (chexpert labeller's row, negbio's row)
    ("10000032", "50414267"): ({"Cardiomegaly": "1.0", "Pneumonia": "-1.0"}, {"Cardiomegaly": "1.0"}),
    ("10000032", "53189527"): ({"No Finding": "1.0"}, {"No Finding": "1.0"}),
    ("10000764", "57375967"): (
        {"Consolidation": "1.0", "Fracture": "-1.0", "Pleural Effusion": "0.0"},
        {"Consolidation": "1.0", "Fracture": "1.0"},
    ),
    ("11000011", "51029426"): ({"Edema": "1.0"}, {"Edema": "1.0"}),
}
MIMIC_IDS = tuple({v for film in MIMIC_FILMS for v in film[:3]}) + ("p10/", "/s5")


def jpeg(seed: int) -> bytes:
    """A 32 px noise film no other file of the tree shares."""
    pixels = np.random.default_rng([21, seed]).integers(0, 256, (32, 32), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _csv(header: list[str], body: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def chexpert_tree(parent: Path, *, folder: str = CHEXPERT_FOLDER, rows: list[tuple] = CHEXPERT_ROWS) -> Path:
    """`parent/<folder>` with train.csv, valid.csv and the films; the CSVs' paths start CHEXPERT_FOLDER."""
    root = parent / folder
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS]
    by_split: dict[str, list[list[str]]] = {"train": [], "valid": []}
    for i, (split, patient, study, file, sex, age, fl, ap, values) in enumerate(rows):
        relative = f"{split}/{patient}/{study}/{file}"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(jpeg(i))
        cells = [values.get(o, "") for o in OBSERVATIONS]
        by_split[split].append([f"{CHEXPERT_FOLDER}/{relative}", sex, age, fl, ap, *cells])
    for split, body in by_split.items():
        (root / f"{split}.csv").write_text(_csv(header, body))
    return root


def mimic_tree(parent: Path) -> Path:
    """`parent/mimic-cxr-jpg`: both labellers' CSVs, a gzipped metadata CSV, the split CSV, files/p10."""
    root = parent / "mimic-cxr-jpg"
    for i, (subject, study, dicom, _, _) in enumerate(MIMIC_FILMS):
        if subject.startswith("11"):
            continue  # files/p11 was not downloaded
        folder = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{dicom}.jpg").write_bytes(jpeg(100 + i))
    for index, labeller in enumerate(("chexpert", "negbio")):
        body = [
            [s, t, *(row[index].get(o, "") for o in OBSERVATIONS)] for (s, t), row in MIMIC_LABELS.items()
        ]
        (root / f"mimic-cxr-2.0.0-{labeller}.csv").write_text(
            _csv(["subject_id", "study_id", *OBSERVATIONS], body)
        )
    meta = _csv(
        ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows"],
        [[d, s, t, "CHEST (PA AND LAT)", v, "3056"] for s, t, d, v, _ in MIMIC_FILMS],
    )
    (root / "mimic-cxr-2.0.0-metadata.csv.gz").write_bytes(gzip.compress(meta.encode()))
    split = _csv(
        ["dicom_id", "study_id", "subject_id", "split"], [[d, t, s, p] for s, t, d, _, p in MIMIC_FILMS]
    )
    (root / "mimic-cxr-2.0.0-split.csv").write_text(split)
    return root
