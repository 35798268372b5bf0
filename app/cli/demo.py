"""`cxrlab demo`: a working reader study on a fresh machine (embedded Postgres, phantom images, accounts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click

DEMO_PASSWORD = "demo-reading-room"  # printed, for a local demo only
DEMO_ACCOUNTS = [
    ("admin@demo.local", "Ada Admin", "admin"),
    ("researcher@demo.local", "Rosa Researcher", "researcher"),
    ("reader1@demo.local", "Dr. Rahul Reader", "reader"),
    ("reader2@demo.local", "Dr. Grace Reader", "reader"),
    ("reader3@demo.local", "Dr. Lee Reader", "reader"),
]
STUDY_TITLE = "Demo study: real or synthetic?"
DEMO_MODEL = "phantom-pggan-64"  # bundled in model_store/, trained on phantoms (see its manifest)
DEMO_CLASSIFIER = "phantom-classifier-64"  # bundled too; labels the demo's generates through LCO
STAND_IN_SET = "Demo synthetic (stand-in: phantoms, seed 1)"


def gan_available() -> bool:
    """Whether the demo can sample its synthetic set from the bundled generator (needs the ml extra)."""
    from app.persistence.model_store import BUNDLED

    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return all((BUNDLED / name / "manifest.json").exists() for name in (DEMO_MODEL, DEMO_CLASSIFIER))


def demo_sets(size: int) -> tuple[tuple[str, int], tuple[str, int]]:
    """(name, resolution) of the demo's real and synthetic sets; both share one resolution."""
    if gan_available():
        from app.persistence.model_store import BUNDLED

        res = json.loads((BUNDLED / DEMO_MODEL / "config.json").read_text())["resolution"]
        return (f"Demo real (phantoms, seed 0, {res} px)", res), (
            f"Demo synthetic ({DEMO_MODEL}, LCO archive, seed 0)",
            res,
        )
    return ("Demo real (phantoms, seed 0)", size), (STAND_IN_SET, size)


def step(name: str, text: str) -> None:
    """One line per step of the demo's setup, so the terminal says what it is doing."""
    click.secho(f"==> {name}: {text}", bold=True)


def shipped_archive(n: int) -> dict:
    """The index of the shipped LCO archive, checked: built from the bundled weights, `n` films intact."""
    from app.cli import demo_archive as da

    index = da.read_index()
    if index is None:
        raise da.StaleArchive(
            f"{da.display_path(da.ARCHIVE)} holds no {da.INDEX}; "
            f"build the demo's archive with `{da.REBUILD_COMMAND}`."
        )
    da.check(index, da.ARCHIVE, model=DEMO_MODEL, classifier=DEMO_CLASSIFIER, n=n)
    return index


def import_demo_archive(name: str, index: dict, n: int) -> None:
    """The demo's synthetic set: the first `n` films of the shipped archive, by the one import path."""
    from app.cli import demo_archive as da
    from app.cli.images import run_import

    spec = da.import_spec(index, da.ARCHIVE, name=name, n=n)
    run_import(spec, da.import_items(index, da.ARCHIVE, n=n), total=n)


def _seed_sets(n_images: int, size: int) -> tuple[str, str]:
    """The demo's real and synthetic image sets, made unless they exist; returns their names."""
    from app.cli.images import import_phantoms
    from app.persistence.db import session_scope
    from app.persistence.repositories import image_sets

    (real_set, real_res), (synthetic_set, syn_res) = demo_sets(size)
    with session_scope() as session:
        missing = {n for n in (real_set, synthetic_set) if image_sets.by_name(session, n) is None}
    if not missing:
        step("image sets", f"'{real_set}' and '{synthetic_set}' exist already")
    # Checked before anything is imported: a stale archive leaves no half-made demo behind.
    archive = shipped_archive(n_images) if synthetic_set in missing - {STAND_IN_SET} else None
    if real_set in missing:
        step("image sets", f"generating {n_images} phantom films at {real_res} px: the real set '{real_set}'")
        import_phantoms(name=real_set, kind="real", n=n_images, size=real_res, seed=0, enriched=True)
    if synthetic_set in missing and synthetic_set == STAND_IN_SET:
        step("image sets", f"generating {n_images} more phantom films: the stand-in synthetic set")
        import_phantoms(
            name=synthetic_set,
            kind="synthetic",
            n=n_images,
            size=syn_res,
            seed=1,
            enriched=True,
            note="; a stand-in because the ml extra (torch) is not installed",
        )
    elif archive is not None:
        step("image sets", f"importing {n_images} films of the shipped LCO archive: the synthetic set")
        import_demo_archive(synthetic_set, archive, n_images)
    return real_set, synthetic_set


def _seed_accounts() -> None:
    """The demo accounts, made unless they exist."""
    from app.domain import users
    from app.persistence.db import session_scope
    from app.persistence.repositories import users as users_repo

    with session_scope() as session:
        exist = [e for e, _, _ in DEMO_ACCOUNTS if users_repo.by_email(session, e) is not None]
        new = [(e, n, r) for e, n, r in DEMO_ACCOUNTS if e not in exist]
        step("accounts", f"creating {len(new)} demo accounts" if new else "the demo accounts exist already")
        for email, name, role in new:
            users.create_user(session, email=email, name=name, role=role, password=DEMO_PASSWORD)


def _instructions(synthetic_set: str) -> str:
    """What the demo study tells its readers, naming where its synthetic films come from."""
    origin = (
        f"were sampled from {DEMO_MODEL}, a small GAN trained on phantoms, and steered "
        "to carry findings (latent class optimisation). "
        if synthetic_set != STAND_IN_SET
        else "are a second set of phantoms (a stand-in: torch is not installed). "
    )
    return (
        "Some of these chest films are real and some synthetic. In this demo the real ones are "
        "procedural phantoms, and the synthetic ones " + origin + "Judge each film, say how sure you are, "
        "and tick the findings you see."
    )


def _seed_study(real_set: str, synthetic_set: str, *, n_cases: int, study_size: int) -> None:
    """The demo study over the two sets, created and launched unless it exists."""
    from app.core.config import get_settings
    from app.domain import studies
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope
    from app.persistence.repositories import image_sets
    from app.persistence.repositories import studies as study_repo
    from app.persistence.repositories import users as users_repo

    with session_scope() as session:
        if study_repo.by_title(session, STUDY_TITLE) is not None:
            step("study", f"'{STUDY_TITLE}' exists already")
            return
        step(
            "study",
            f"creating '{STUDY_TITLE}' ({n_cases} cases + 2 practice, 3 readers) and launching it "
            "(the leakage gate checks its files first)",
        )
        admin = users_repo.by_email(session, "admin@demo.local")
        readers = [users_repo.by_email(session, e) for e, _, r in DEMO_ACCOUNTS if r == "reader"]
        sets = [image_sets.by_name(session, real_set), image_sets.by_name(session, synthetic_set)]
        design = studies.StudyDesign(
            title=STUDY_TITLE,
            image_set_ids=[s.id for s in sets],
            n_cases=n_cases,
            practice_cases=2,
            resolution=study_size,
            ask_findings=True,
            ask_free_text=True,
            ask_click=True,
            seed=2021,
            reader_ids=[r.id for r in readers],
            instructions=_instructions(synthetic_set),
        )
        store = BlobStore(get_settings().images_dir)
        study = studies.create_study(session, store, design, actor_id=admin.id)
        studies.launch(session, store, study.id, actor_id=admin.id)
        if study.status != "launched":  # kept as a draft, so its page shows why
            click.echo("The leakage gate kept the demo study a draft: " + " ".join(study.leakage["reasons"]))


def seed_demo(*, n_images: int, size: int, n_cases: int, study_size: int) -> list[tuple[str, str]]:
    """Create the demo data unless it exists; returns (email, role) of the demo accounts."""
    real_set, synthetic_set = _seed_sets(n_images, size)
    _seed_accounts()
    _seed_study(real_set, synthetic_set, n_cases=n_cases, study_size=study_size)
    return [(e, r) for e, _, r in DEMO_ACCOUNTS]


def start_worker() -> subprocess.Popen:
    """A `cxrlab worker` beside the demo's server, on the same (possibly embedded) database."""
    from app.core.config import get_settings
    from app.persistence.db import database_url

    env = {**os.environ, "DATABASE_URL": database_url(get_settings())}
    step("worker", "starting a job worker (queues gpu, cpu): runs started under Runs execute on this machine")
    command = [sys.executable, "-c", "from app.cli.main import main; main()", "worker", "--queues", "gpu,cpu"]
    # Its own session: Ctrl+C in the terminal reaches the app only, and the worker gets one SIGTERM
    # below (a second signal would kill it before a running job saves its state).
    return subprocess.Popen(command, env=env, start_new_session=True)


def stop_worker(worker: subprocess.Popen) -> None:
    """SIGTERM: a running job gets procrastinate's grace, then writes its resume state and stops."""
    worker.terminate()
    try:
        worker.wait(120)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@click.command()
@click.option("--serve/--no-serve", default=True, show_default=True, help="Start the web app afterwards.")
@click.option("--images", "n_images", type=int, default=120, show_default=True, help="Films per set.")
@click.option("--size", type=int, default=256, show_default=True, help="Image size when no GAN is used.")
@click.option("--study-size", type=int, default=256, show_default=True, help="Resolution readers see.")
@click.option("--cases", "n_cases", type=int, default=20, show_default=True)
@click.option(
    "--rebuild",
    is_flag=True,
    help="First rebuild the shipped LCO archive (model_store/demo-archive, --images films) from the bundled "
    "models: 10 to 30 minutes on two CPU cores.",
)
def demo(serve: bool, n_images: int, size: int, study_size: int, n_cases: int, rebuild: bool) -> None:
    """Set up the demo (idempotent) and serve it at http://127.0.0.1:8000."""
    os.environ.setdefault("CXRLAB_ENV", "development")
    from sqlalchemy.engine import make_url

    from app.cli.serving import run_server
    from app.core.config import get_settings
    from app.persistence.db import get_engine
    from app.persistence.migrate import upgrade

    get_settings.cache_clear()
    settings = get_settings()
    if rebuild:
        from app.cli import demo_archive as da

        if not gan_available():
            raise click.ClickException(
                "--rebuild needs torch: install the ml extra (pip install -e '.[ml]')."
            )
        step(
            "archive",
            f"rebuilding {da.display_path(da.ARCHIVE)} with latent class optimisation ({n_images} films)",
        )
        da.build(da.ARCHIVE, model=DEMO_MODEL, classifier=DEMO_CLASSIFIER, n=n_images)
    if settings.database_url:
        url = make_url(settings.database_url)
        step("database", f"using DATABASE_URL (postgres at {url.host}:{url.port or 5432}/{url.database})")
    else:
        step("database", f"starting the embedded Postgres in {settings.pgdata_dir} (DATABASE_URL is unset)")
    engine = get_engine()  # the embedded server starts here
    step("migrations", "bringing the schema to the latest revision")
    upgrade(engine)
    accounts = seed_demo(n_images=n_images, size=size, n_cases=n_cases, study_size=study_size)
    click.echo(f"\nDemo accounts (password for all: {DEMO_PASSWORD}):")
    for email, role in accounts:
        click.echo(f"  {role:<10} {email}")
    if gan_available():
        click.echo(
            f"The synthetic set is an LCO archive: {DEMO_MODEL} steered by {DEMO_CLASSIFIER} towards "
            "the real set's label combinations (both bundled in model_store/), shipped as data in "
            "model_store/demo-archive (`cxrlab demo --rebuild` builds it again)."
        )
    else:
        click.echo("torch is not installed, so the synthetic set is a second phantom set (a stand-in).")
    if serve:
        worker = start_worker() if gan_available() else None
        if worker is None:
            step("worker", "none: runs started in the browser wait until `cxrlab worker` runs")
        step(
            "URL",
            f"serving at http://{settings.host}:{settings.port}  (Ctrl+C stops the app"
            + (", the worker" if worker else "")
            + ("" if settings.database_url else " and the embedded database")
            + ")",
        )
        try:
            run_server(host=None, port=None, migrate=False)
        finally:
            if worker is not None:
                stop_worker(worker)
