"""`cxrlab demo`: a working reader study on a fresh machine (embedded Postgres, phantom images, accounts)."""

from __future__ import annotations

import os

import click

DEMO_PASSWORD = "demo-password"  # printed, for a local demo only
DEMO_ACCOUNTS = [
    ("admin@demo.local", "Ada Admin", "admin"),
    ("researcher@demo.local", "Rosa Researcher", "researcher"),
    ("reader1@demo.local", "Dr. Rahul Reader", "reader"),
    ("reader2@demo.local", "Dr. Grace Reader", "reader"),
    ("reader3@demo.local", "Dr. Lee Reader", "reader"),
]
REAL_SET, SYNTHETIC_SET = "Demo real (phantoms, seed 0)", "Demo synthetic (stand-in: phantoms, seed 1)"
STUDY_TITLE = "Demo study: real or synthetic?"


def seed_demo(*, n_images: int, size: int, n_cases: int) -> list[tuple[str, str]]:
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
    for name, kind, seed in ((REAL_SET, "real", 0), (SYNTHETIC_SET, "synthetic", 1)):
        with session_scope() as session:
            exists = image_sets.by_name(session, name) is not None
        if not exists:
            note = "; a stand-in until the GAN exists" if kind == "synthetic" else ""
            import_phantoms(name=name, kind=kind, n=n_images, size=size, seed=seed, enriched=True, note=note)
    with session_scope() as session:
        from sqlalchemy import select

        from app.persistence.models import Study

        if session.scalar(select(Study.id).where(Study.title == STUDY_TITLE)) is None:
            admin = users_repo.by_email(session, "admin@demo.local")
            readers = [users_repo.by_email(session, e) for e, _, r in DEMO_ACCOUNTS if r == "reader"]
            sets = [image_sets.by_name(session, REAL_SET), image_sets.by_name(session, SYNTHETIC_SET)]
            design = studies.StudyDesign(
                title=STUDY_TITLE,
                image_set_ids=[s.id for s in sets],
                n_cases=n_cases,
                practice_cases=2,
                resolution=size,
                ask_findings=True,
                ask_free_text=True,
                ask_click=True,
                seed=2021,
                reader_ids=[r.id for r in readers],
                instructions="Half of these chest films are 'real' and half 'synthetic'. In this demo both "
                "are procedural phantoms; the synthetic set is a stand-in until the project's GAN "
                "samples them. Judge each film, say how sure you are, and tick the findings you see.",
            )
            study = studies.create_study(
                session, BlobStore(get_settings().images_dir), design, actor_id=admin.id
            )
            studies.launch(session, study.id, actor_id=admin.id)
    return [(e, r) for e, _, r in DEMO_ACCOUNTS]


@click.command()
@click.option("--serve/--no-serve", default=True, show_default=True, help="Start the web app afterwards.")
@click.option("--images", "n_images", type=int, default=120, show_default=True, help="Phantoms per set.")
@click.option("--size", type=int, default=256, show_default=True)
@click.option("--cases", "n_cases", type=int, default=20, show_default=True)
def demo(serve: bool, n_images: int, size: int, n_cases: int) -> None:
    """Set up the demo (idempotent) and serve it at http://127.0.0.1:8000."""
    os.environ.setdefault("CXRLAB_ENV", "development")
    from app.cli.main import run_server
    from app.core.config import get_settings
    from app.persistence.db import get_engine
    from app.persistence.migrate import upgrade

    get_settings.cache_clear()
    settings = get_settings()
    upgrade(get_engine())
    accounts = seed_demo(n_images=n_images, size=size, n_cases=n_cases)
    click.echo(f"\nDemo accounts (password for all: {DEMO_PASSWORD}):")
    for email, role in accounts:
        click.echo(f"  {role:<10} {email}")
    click.echo("The 'synthetic' set is a second phantom set, a stand-in until the GAN exists.")
    if serve:
        click.echo(
            f"\nOpen http://{settings.host}:{settings.port}  (Ctrl+C stops the app and its database)\n"
        )
        run_server(host=None, port=None, migrate=False)
