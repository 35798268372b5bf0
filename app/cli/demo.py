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
    from app.persistence.snapshots import BUNDLED

    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return all((BUNDLED / name / "manifest.json").exists() for name in (DEMO_MODEL, DEMO_CLASSIFIER))


def demo_sets(size: int) -> tuple[tuple[str, int], tuple[str, int]]:
    """(name, resolution) of the demo's real and synthetic sets; both share one resolution."""
    if gan_available():
        from app.persistence.snapshots import BUNDLED

        res = json.loads((BUNDLED / DEMO_MODEL / "config.json").read_text())["resolution"]
        return (f"Demo real (phantoms, seed 0, {res} px)", res), (
            f"Demo synthetic ({DEMO_MODEL}, LCO archive, seed 0)",
            res,
        )
    return ("Demo real (phantoms, seed 0)", size), (STAND_IN_SET, size)


def build_demo_archive(name: str, real_set: str, n: int, size: int) -> None:
    """The demo's synthetic set: LCO towards label rows of the real set (their real co-occurrence)."""
    from tqdm import tqdm

    from app.cli.images import run_import
    from app.domain.importers import ImportSpec
    from app.jobs.tasks.lco import archive_items, label_rows
    from app.ml.classifier.checkpoints import load_classifier, thresholds_of
    from app.ml.gan.checkpoints import load_snapshot
    from app.ml.lco import targets
    from app.ml.lco.optimise import LcoConfig, optimise
    from app.persistence.db import session_scope
    from app.persistence.repositories import image_sets
    from app.persistence.snapshots import BUNDLED

    G, g_manifest = load_snapshot(BUNDLED / DEMO_MODEL)
    C, c_manifest = load_classifier(BUNDLED / DEMO_CLASSIFIER)
    findings, thresholds = list(c_manifest["findings"]), thresholds_of(c_manifest)
    with session_scope() as session:
        real = image_sets.by_name(session, real_set)
        goal = targets.empirical(label_rows(session, real.id, findings), n, seed=0)
    cfg = LcoConfig(steps=100, lr=0.1, restarts=1, batch=16)
    with tqdm(total=n, desc="LCO targets reached", unit="img") as bar:
        res = optimise(G, C, goal, thresholds, cfg, seed=0, progress_fn=lambda ok, _: bar.update(ok - bar.n))
    meta = {"method": "lco", "model": DEMO_MODEL, "model_sha256": g_manifest["sha256"], "seed": 0}
    meta |= {"classifier": DEMO_CLASSIFIER, "classifier_sha256": c_manifest["sha256"], "lco": cfg.to_dict()}
    meta |= {"target_mode": "empirical", "job": None}
    spec = ImportSpec(
        name=name,
        kind="synthetic",
        label_schema=tuple(findings),
        resolution=size,
        source="lco",
        description=f"{n} LCO films of {DEMO_MODEL} labelled by {DEMO_CLASSIFIER}; "
        f"the optimiser reached {int(res.success.sum())} targets",
    )
    items = archive_items(
        G, C, res, goal, thresholds, findings, meta=meta, batch=16, margin=cfg.margin, resolution=size
    )
    run_import(spec, items, total=n)


def seed_demo(*, n_images: int, size: int, n_cases: int, study_size: int) -> list[tuple[str, str]]:
    """Create the demo data unless it exists; returns (email, role) of the demo accounts."""
    from app.cli.images import import_phantoms
    from app.core.config import get_settings
    from app.domain import studies, users
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope
    from app.persistence.repositories import image_sets
    from app.persistence.repositories import users as users_repo

    with session_scope() as session:
        for email, name, role in DEMO_ACCOUNTS:
            if users_repo.by_email(session, email) is None:
                users.create_user(session, email=email, name=name, role=role, password=DEMO_PASSWORD)
    (real_set, real_res), (synthetic_set, syn_res) = demo_sets(size)
    with session_scope() as session:
        missing = {n for n in (real_set, synthetic_set) if image_sets.by_name(session, n) is None}
    if real_set in missing:
        import_phantoms(name=real_set, kind="real", n=n_images, size=real_res, seed=0, enriched=True)
    if synthetic_set in missing and synthetic_set == STAND_IN_SET:
        import_phantoms(
            name=synthetic_set,
            kind="synthetic",
            n=n_images,
            size=syn_res,
            seed=1,
            enriched=True,
            note="; a stand-in because the ml extra (torch) is not installed",
        )
    elif synthetic_set in missing:
        build_demo_archive(synthetic_set, real_set, n_images, syn_res)
    with session_scope() as session:
        from sqlalchemy import select

        from app.persistence.models import Study

        if session.scalar(select(Study.id).where(Study.title == STUDY_TITLE)) is None:
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
                instructions=(
                    "Some of these chest films are real and some synthetic. In this demo the real ones are "
                    "procedural phantoms, and the synthetic ones "
                    + (
                        f"were sampled from {DEMO_MODEL}, a small GAN trained on phantoms, and steered "
                        "to carry findings (latent class optimisation). "
                        if synthetic_set != STAND_IN_SET
                        else "are a second set of phantoms (a stand-in: torch is not installed). "
                    )
                    + "Judge each film, say how sure you are, and tick the findings you see."
                ),
            )
            store = BlobStore(get_settings().images_dir)
            study = studies.create_study(session, store, design, actor_id=admin.id)
            studies.launch(session, store, study.id, actor_id=admin.id)
            if study.status != "launched":  # kept as a draft, so its page shows why
                click.echo(
                    "The leakage gate kept the demo study a draft: " + " ".join(study.leakage["reasons"])
                )
    return [(e, r) for e, _, r in DEMO_ACCOUNTS]


def start_worker() -> subprocess.Popen:
    """A `cxrlab worker` beside the demo's server, on the same (possibly embedded) database."""
    from app.core.config import get_settings
    from app.persistence.db import database_url

    env = {**os.environ, "DATABASE_URL": database_url(get_settings())}
    click.echo("Started a job worker (queues gpu, cpu): runs started under Runs execute on this machine.")
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
@click.option("--images", "n_images", type=int, default=120, show_default=True, help="Phantoms per set.")
@click.option("--size", type=int, default=256, show_default=True, help="Image size when no GAN is used.")
@click.option("--study-size", type=int, default=256, show_default=True, help="Resolution readers see.")
@click.option("--cases", "n_cases", type=int, default=20, show_default=True)
def demo(serve: bool, n_images: int, size: int, study_size: int, n_cases: int) -> None:
    """Set up the demo (idempotent) and serve it at http://127.0.0.1:8000."""
    os.environ.setdefault("CXRLAB_ENV", "development")
    from app.cli.serving import run_server
    from app.core.config import get_settings
    from app.persistence.db import get_engine
    from app.persistence.migrate import upgrade

    get_settings.cache_clear()
    settings = get_settings()
    upgrade(get_engine())
    accounts = seed_demo(n_images=n_images, size=size, n_cases=n_cases, study_size=study_size)
    click.echo(f"\nDemo accounts (password for all: {DEMO_PASSWORD}):")
    for email, role in accounts:
        click.echo(f"  {role:<10} {email}")
    if gan_available():
        click.echo(
            f"The synthetic set is an LCO archive: {DEMO_MODEL} steered by {DEMO_CLASSIFIER} towards "
            "the real set's label combinations (both bundled in model_store/)."
        )
    else:
        click.echo("torch is not installed, so the synthetic set is a second phantom set (a stand-in).")
    if serve:
        click.echo(
            f"\nOpen http://{settings.host}:{settings.port}  (Ctrl+C stops the app and its database)\n"
        )
        worker = start_worker() if gan_available() else None
        if worker is None:
            click.echo("No job worker: runs started in the browser wait until `cxrlab worker` runs.")
        try:
            run_server(host=None, port=None, migrate=False)
        finally:
            if worker is not None:
                stop_worker(worker)
