"""Importing films over DICOMweb from a local Orthanc, against importing the same files from a folder.

Makes N synthetic 12-bit DICOM films (two per patient, one study each), writes them to a folder and stores
them in an Orthanc started for the run (Debian's orthanc + orthanc-dicomweb), then times, in one process:
  (a) the folder import: `sources.folder_images` + `importers.import_images`, the baseline;
  (b) the DICOMweb import: `dicomweb.import_from_pacs` (QIDO-RS listing, WADO-RS retrieve of each film,
      staging, then the one-transaction import), with the listing's share reported on its own.
Both render at the same size into fresh sets; the figures are films per second and (b)'s time over (a)'s.

    .venv/bin/python benchmarks/bench_dicomweb.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _setup import ROOT, add_database_option, bench_database
from tqdm import tqdm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--films", type=int, default=5000)
    parser.add_argument("--film-px", type=int, default=512, help="Side of each DICOM film (16-bit).")
    parser.add_argument("--size", type=int, default=256, help="Rendered side length.")
    args = parser.parse_args()

    import sys

    sys.path.insert(0, str(ROOT))
    from tests.dicom_films import chest_film
    from tests.orthanc import PASSWORD, USER, running_orthanc

    with bench_database(args.database_url) as env, tempfile.TemporaryDirectory() as tmp:
        import os

        folder, staging = Path(tmp) / "films", Path(tmp) / "staging"
        folder.mkdir()
        (Path(tmp) / "orthanc").mkdir()
        with running_orthanc(Path(tmp) / "orthanc") as pacs:
            os.environ.update(DICOMWEB_USERNAME=USER, DICOMWEB_PASSWORD=PASSWORD)
            from app.core.config import get_settings

            get_settings.cache_clear()
            made_at = time.perf_counter()
            for i in tqdm(range(args.films), desc="making and storing films", unit="film"):
                data, _ = chest_film(i, patient_id=f"bench-{i // 2:05d}", size=args.film_px)
                (folder / f"film-{i:05d}.dcm").write_bytes(data)
                pacs.store(data)
            made_s = time.perf_counter() - made_at
            stored_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
            made = f"{args.films} films of {args.film_px} px ({stored_mb:,.0f} MiB)"
            print(f"{made} made and stored in {made_s:.1f} s")
            folder_s = _folder_import(folder, args.size)
            dicomweb_s, listing_s = _dicomweb_import(pacs.dicomweb, staging, args.size, args.films)
        print(f"\n### DICOMweb import ({env.label})\n")
        print("| import | films | time s | films/s |")
        print("| --- | ---: | ---: | ---: |")
        baseline = f"{args.films} | {folder_s:.1f} | {args.films / folder_s:.1f}"
        print(f"| folder of Part 10 files (baseline) | {baseline} |")
        print(f"| DICOMweb from Orthanc | {args.films} | {dicomweb_s:.1f} | {args.films / dicomweb_s:.1f} |")
        print(f"| of which the QIDO-RS listing | | {listing_s:.1f} | |")
        print(f"\nRatio DICOMweb / folder time: **{dicomweb_s / folder_s:.2f}**")


def _folder_import(folder: Path, size: int) -> float:
    from app.core.config import get_settings
    from app.domain import sources
    from app.domain.importers import ImportSpec, import_images
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    items = sources.folder_images(folder, labels_csv=None, schema=())
    spec = ImportSpec(name="folder", kind="real", label_schema=(), resolution=size, source="folder")
    start = time.perf_counter()
    with session_scope() as session, tqdm(total=len(items), desc="folder import", unit="film") as bar:
        import_images(
            session,
            BlobStore(get_settings().images_dir),
            spec,
            items,
            actor_id=None,
            progress=lambda n: bar.update(n - bar.n),
        )
    return time.perf_counter() - start


def _dicomweb_import(url: str, staging: Path, size: int, films: int) -> tuple[float, float]:
    from app.core.config import get_settings
    from app.domain import dicomweb
    from app.domain.dicomweb_query import ImportDicomwebConfig
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    query = ImportDicomwebConfig(set_name="dicomweb", size=size)
    marks: dict[str, float] = {}
    start = time.perf_counter()
    with session_scope() as session, tqdm(total=1000, desc="DICOMweb import", unit="‰") as bar:

        def progress(fraction: float, note: str) -> None:
            if fraction > 0 and "listed" not in marks:
                marks["listed"] = time.perf_counter()
            bar.update(int(fraction * 1000) - bar.n)

        image_set, _ = dicomweb.import_from_pacs(
            session,
            BlobStore(get_settings().images_dir),
            dicomweb.connect(url),
            query,
            staging,
            actor_id=None,
            progress=progress,
        )
        assert image_set.image_count == films, image_set.image_count
    end = time.perf_counter()
    return end - start, marks.get("listed", end) - start


if __name__ == "__main__":
    main()
