"""The command line against real Postgres: migrations without drift, and the embedded server's life cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func


def test_alembic_finds_no_drift(db_url):
    from app.persistence.db import get_engine
    from app.persistence.migrate import check

    check(get_engine())  # raises on drift


def _postgres_for(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(pgdata) in cmd:
            found.append(proc)
    return found


@pytest.mark.slow
def test_cli_without_database_url_starts_migrates_and_stops_the_embedded_server():
    # Outside pytest's basetemp, which a concurrent pytest session may chmod to 0700 under the server.
    tmp_path = Path(tempfile.mkdtemp(prefix="cxrlab-cli-test-"))
    try:
        _embedded_life_cycle(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _embedded_life_cycle(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    env.update(STORE_DIR=str(tmp_path / "store"), CXRLAB_ENV="development")
    cli = [sys.executable, "-c", "from app.cli.main import main; main()"]
    out = subprocess.run([*cli, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    pgdata = (tmp_path / "store" / "pgdata").resolve()
    assert (pgdata / "PG_VERSION").exists()
    out = subprocess.run(
        [*cli, "users", "create", "--email", "a@b.org", "--role", "admin", "--password", "long-enough-pw"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0 and "created admin a@b.org" in out.stdout, out.stderr
    out = subprocess.run([*cli, "db", "check"], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "no drift" in out.stdout, out.stderr
    deadline = time.monotonic() + 60  # a guard against hanging: the loop ends as soon as it stops
    while _postgres_for(pgdata) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postgres_for(pgdata), "the embedded server outlived the command"


def test_cli_reports_domain_errors_plainly(tmp_path, db_url):
    env = {**os.environ, "STORE_DIR": str(tmp_path)}
    cli = [sys.executable, "-c", "from app.cli.main import main; main()"]
    out = subprocess.run(
        [*cli, "images", "import", "folder", str(tmp_path), "--name", "empty"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "No PNG, JPEG or DICOM files" in out.stderr


def test_cli_phantoms_import_a_labelled_set(tmp_path, db_url, session):
    from sqlalchemy import select

    from app.persistence.models import Image, ImageSet

    env = {**os.environ, "STORE_DIR": str(tmp_path)}
    cli = [sys.executable, "-c", "from app.cli.main import main; main()"]
    out = subprocess.run(
        [*cli, "phantoms", "--n", "6", "--size", "64", "--seed", "3", "--enriched"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert "imported 6 images into 'phantoms-seed3'" in out.stdout
    image_set = session.scalar(select(ImageSet).where(ImageSet.name == "phantoms-seed3"))
    images = session.scalars(select(Image).where(Image.image_set_id == image_set.id)).all()
    assert image_set.kind == "real" and image_set.resolution == 64 and len(images) == 6
    assert all(i.provenance["generator"] == "phantoms" and i.provenance["seed"] == 3 for i in images)
    assert any(i.labels for i in images)
    assert all((tmp_path / "images" / i.sha256[:2] / f"{i.sha256}.png").exists() for i in images)


def test_cli_folder_import_says_which_files_it_skipped_as_duplicates(tmp_path, db_url, session):
    from io import BytesIO

    import numpy as np
    from PIL import Image as PILImage
    from sqlalchemy import select

    from app.persistence.models import ImageSet

    folder = tmp_path / "films"
    (folder / "b").mkdir(parents=True)
    for name, value in [("a.png", 10), ("b/again.png", 10), ("c.png", 200)]:
        buf = BytesIO()
        PILImage.fromarray(np.full((40, 40), value, np.uint8), "L").save(buf, format="PNG")
        (folder / name).write_bytes(buf.getvalue())
    env = {**os.environ, "STORE_DIR": str(tmp_path / "store")}
    cli = [sys.executable, "-c", "from app.cli.main import main; main()"]
    out = subprocess.run(
        [*cli, "images", "import", "folder", str(folder), "--name", "films", "--size", "64"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "imported 2 images into 'films'" in out.stdout
    assert "1 file had the same content as another file of this import" in out.stdout
    assert "b/again.png (same as a.png)" in out.stdout
    image_set = session.scalar(select(ImageSet).where(ImageSet.name == "films"))
    assert image_set.image_count == 2 and "b/again.png (same as a.png)" in image_set.description


@pytest.mark.slow
def test_demo_imports_the_shipped_lco_archive_with_its_labels_and_provenance(tmp_path, db_url, session):
    from sqlalchemy import select

    from app.cli import demo_archive as da
    from app.persistence.models import Image, ImageSet, Study

    env = {**os.environ, "STORE_DIR": str(tmp_path)}
    cli = [sys.executable, "-c", "from app.cli.main import main; main()"]
    too_many = ["demo", "--no-serve", "--images", "121"]  # the archive holds 120: refused before any import
    out = subprocess.run([*cli, *too_many], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "holds 120 films and 121 were asked for" in out.stderr
    assert "cxrlab demo --rebuild --images 121" in out.stderr
    assert session.scalar(select(func.count()).select_from(ImageSet)) == 0
    args = ["demo", "--no-serve", "--images", "8", "--cases", "6"]
    out = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "LCO archive: phantom-pggan-64 steered by phantom-classifier-64" in out.stdout
    for name in ("database", "migrations", "image sets", "accounts", "study"):  # each step says what it does
        assert f"==> {name}: " in out.stdout, name
    synthetic = session.scalar(select(ImageSet).where(ImageSet.kind == "synthetic"))
    real = session.scalar(select(ImageSet).where(ImageSet.kind == "real"))
    assert synthetic.source == "lco" and synthetic.resolution == real.resolution == 64
    assert synthetic.label_schema == real.label_schema  # the classifier's findings are the phantoms'
    assert "shipped in model_store/demo-archive, built by `cxrlab demo --rebuild`" in synthetic.description
    images = session.scalars(select(Image).where(Image.image_set_id == synthetic.id).order_by(Image.id)).all()
    shipped = da.read_index()["images"][:8]
    assert len(images) == 8 and {i.provenance["model"] for i in images} == {"phantom-pggan-64"}
    assert {i.provenance["classifier"] for i in images} == {"phantom-classifier-64"}
    for image, entry in zip(images, shipped, strict=True):  # as the rebuild made them, through the one path
        assert image.sha256 == entry["sha256"] and image.labels == entry["findings"]
        assert image.provenance == {"source_file": entry["file"].removesuffix(".png"), **entry["provenance"]}
        if image.provenance["success"]:  # a reached target becomes the labels
            assert sorted(image.labels) == sorted(image.provenance["target"])
    study = session.scalar(select(Study))
    assert study.status == "launched" and study.resolution == 256
    again = subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr  # idempotent
    assert "exist already" in again.stdout
    assert session.scalar(select(func.count()).select_from(ImageSet)) == 2


def test_the_queue_revision_downgrades_and_upgrades_cleanly(db_url):
    """0002 adds procrastinate's schema and the runs table; going down removes every object it made."""
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from app.core.embedded_db import sqlalchemy_url
    from app.persistence.migrate import upgrade

    name = f"cxrlab_mig_{secrets.token_hex(4)}"
    admin = create_engine(sqlalchemy_url(db_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(sqlalchemy_url(db_url)).set(database=name))
    count = text(
        "SELECT (SELECT count(*) FROM pg_tables WHERE tablename LIKE 'procrastinate%' OR tablename = 'runs')"
        " + (SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%')"
        " + (SELECT count(*) FROM pg_type WHERE typname LIKE 'procrastinate%' AND typtype IN ('e', 'c'))"
    )
    try:
        upgrade(engine)
        with engine.connect() as conn:
            at_head = conn.scalar(count)
        from alembic import command

        from app.persistence.migrate import alembic_config

        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with engine.connect() as conn:
            assert conn.scalar(count) == 0
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.scalar(count) == at_head > 20
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
