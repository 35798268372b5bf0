"""Where images come from: a folder, an uploaded zip or files, or the ChestX-ray14 layout."""

from __future__ import annotations

import csv
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from app.domain.errors import Invalid
from app.domain.identities import pseudonym
from app.domain.importers import SourceImage
from app.domain.labels import LabelRow, parse_labels_csv, split_findings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}
LABELS_NAMES = {"labels.csv"}
# A zip may expand to at most this many times the upload limit, and hold at most this many members.
ZIP_EXPANSION_LIMIT = 4
ZIP_MAX_MEMBERS = 200_000
# No single image is larger than this uncompressed (a 4096 x 4096 16-bit DICOM is 32 MiB).
ZIP_MAX_MEMBER_BYTES = 256 * 1024 * 1024


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and Path(base).suffix.lower() in IMAGE_SUFFIXES


def _climbs_out(name: str) -> bool:
    """Whether a name is absolute or uses '..': what a path-traversal entry looks like."""
    parts = name.replace("\\", "/").split("/")
    drive = len(name) > 1 and name[1] == ":" and name[0].isalpha()  # C:\x.png, C:x.png
    return name.startswith(("/", "\\")) or drive or ".." in parts


def _refuse_path_parts(names: list[str], where: str) -> None:
    """Refuse the whole import when any name points outside its own folder (nothing is written yet)."""
    bad = [n for n in names if _climbs_out(n)]
    if bad:
        listed = ", ".join(n[:200] for n in bad[:5]) + (" …" if len(bad) > 5 else "")
        raise Invalid(
            f"Nothing was imported: {where} names that are absolute paths or climb out with '..' "
            f"({listed}). Subfolders are fine; '..' and a leading '/' are not."
        )


def _attach_labels(names: list[str], labels: dict[str, LabelRow] | None) -> dict[str, LabelRow]:
    """Match files with label rows; with a labels CSV every file needs a row and every row a file."""
    if labels is None:
        return {n: LabelRow(()) for n in names}
    bases = {n: n.rsplit("/", 1)[-1] for n in names}
    twice = sorted(b for b, k in Counter(bases.values()).items() if k > 1)
    if twice:
        raise Invalid(
            f"Labels are matched by file name, but {', '.join(twice[:5])} appear in several folders."
        )
    missing_rows = [n for n, b in bases.items() if b not in labels]
    missing_files = sorted(set(labels) - set(bases.values()))
    problems = []
    if missing_rows:
        problems.append(
            f"no labels row for {', '.join(missing_rows[:5])}" + (" …" if len(missing_rows) > 5 else "")
        )
    if missing_files:
        problems.append(
            f"labels rows without a file: {', '.join(missing_files[:5])}"
            + (" …" if len(missing_files) > 5 else "")
        )
    if problems:
        raise Invalid("The labels CSV does not match the images: " + "; ".join(problems))
    return {n: labels[b] for n, b in bases.items()}


def folder_images(folder: Path, *, labels_csv: Path | None, schema: tuple[str, ...]) -> list[SourceImage]:
    """Every PNG/JPEG/DICOM under `folder` (recursively), with labels from the optional CSV."""
    if not folder.is_dir():
        raise Invalid(f"{folder} is not a folder.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and _is_image_name(p.name))
    if not paths:
        raise Invalid(f"No PNG, JPEG or DICOM files were found in {folder}.")
    labels = parse_labels_csv(labels_csv.read_bytes(), schema) if labels_csv else None
    names = [p.relative_to(folder).as_posix() for p in paths]
    matched = _attach_labels(names, labels)
    return [
        SourceImage(
            name=n,
            read=p.read_bytes,
            findings=matched[n].findings,
            patient_id=matched[n].patient_id,
            split=matched[n].split,
        )
        for n, p in zip(names, paths, strict=True)
    ]


def zip_images(
    archive: zipfile.ZipFile, *, labels_data: bytes | None, schema: tuple[str, ...], max_bytes: int
) -> list[SourceImage]:
    """Images inside an uploaded zip, read member by member (never extracted to disk)."""
    # Every entry, folders and non-images too: a zip that carries such a name is not one to trust.
    _refuse_path_parts([m.filename for m in archive.infolist()], "the zip holds")
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS:
        raise Invalid(f"The zip holds more than {ZIP_MAX_MEMBERS} files.")
    if sum(m.file_size for m in members) > ZIP_EXPANSION_LIMIT * max_bytes:
        raise Invalid("The zip expands to more data than an upload may hold.")
    too_big = [m.filename for m in members if m.file_size > ZIP_MAX_MEMBER_BYTES]
    if too_big:
        raise Invalid(
            f"{too_big[0]} in the zip is larger than {ZIP_MAX_MEMBER_BYTES // 2**20} MiB uncompressed."
        )
    # Zips made on Windows may separate folders with backslashes; the names stored use '/'.
    named = [(m.filename.replace("\\", "/"), m) for m in members]
    if labels_data is None:
        inner = [m for n, m in named if n.rsplit("/", 1)[-1].lower() in LABELS_NAMES]
        labels_data = archive.read(inner[0]) if inner else None
    images = [(n, m) for n, m in named if _is_image_name(n) and "__MACOSX" not in n]
    if not images:
        raise Invalid("The zip holds no PNG, JPEG or DICOM files.")
    labels = parse_labels_csv(labels_data, schema) if labels_data is not None else None
    matched = _attach_labels([n for n, _ in images], labels)

    def reader(member: zipfile.ZipInfo):  # binds the member for later, lazy reading
        return lambda: archive.read(member)

    return [
        SourceImage(
            name=n,
            read=reader(m),
            findings=matched[n].findings,
            patient_id=matched[n].patient_id,
            split=matched[n].split,
        )
        for n, m in images
    ]


def uploaded_images(
    files: list[tuple[str, bytes]], *, labels_data: bytes | None, schema: tuple[str, ...]
) -> list[SourceImage]:
    """Loose uploaded files (already in memory, bounded by the upload limit)."""
    _refuse_path_parts([n for n, _ in files], "the upload has file")
    images = [(n, d) for n, d in files if not n.lower().endswith(".csv")]
    if not images:
        raise Invalid("No image files were uploaded.")
    labels = parse_labels_csv(labels_data, schema) if labels_data is not None else None
    matched = _attach_labels([n for n, _ in images], labels)
    return [
        SourceImage(
            name=n,
            read=(lambda d=d: d),
            findings=matched[n].findings,
            patient_id=matched[n].patient_id,
            split=matched[n].split,
        )
        for n, d in images
    ]


def _read_list(path: Path) -> set[str]:
    return (
        {line.strip() for line in path.read_text().splitlines() if line.strip()} if path.exists() else set()
    )


def chestxray14_images(
    root: Path, *, schema: tuple[str, ...], limit: int | None, split: str = "all"
) -> Iterator[SourceImage]:
    """Images of the NIH ChestX-ray14 layout: Data_Entry_2017.csv, split lists, images_*/images/*.png."""
    entries = root / "Data_Entry_2017.csv"
    if not entries.exists():
        raise Invalid(f"{entries} is missing: point at the folder that holds Data_Entry_2017.csv.")
    if split not in ("all", "train", "test"):
        raise Invalid("split must be all, train or test.")
    train, test = _read_list(root / "train_val_list.txt"), _read_list(root / "test_list.txt")
    if split != "all" and not (train or test):
        raise Invalid("train_val_list.txt and test_list.txt are needed to choose a split.")
    files = {p.name: p for p in root.glob("images*/**/*.png")}
    count = 0
    with entries.open(newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["Image Index"].strip()
            which = "test" if name in test else "train" if name in train else None
            if split != "all" and which != split:
                continue
            path = files.get(name)
            if path is None:
                continue
            findings, unknown = split_findings(row["Finding Labels"], schema)
            if unknown:
                raise Invalid(f"{name}: findings {sorted(unknown)} are not in the label schema.")
            patient = row["Patient ID"].strip()
            yield SourceImage(
                # "00000001_000.png" is the patient's id and a follow-up number: stored by pseudonyms only.
                name=f"{pseudonym('patient', patient)}/{pseudonym('instance', name)}.png",
                read=path.read_bytes,
                findings=findings,
                patient_id=patient,
                split=which,
                provenance={
                    "view": row.get("View Position", ""),
                    "age": row.get("Patient Age", ""),
                    "sex": row.get("Patient Gender", ""),
                    "follow_up": row.get("Follow-up #", ""),
                },
            )
            count += 1
            if limit is not None and count >= limit:
                return
