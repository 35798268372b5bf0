"""The `cxrlab` command line: serve, worker, database, users, images, phantoms, models, demo."""

from __future__ import annotations

import logging
import sys

import click

import app.cli.dicomweb  # noqa: F401  (registers `images import dicomweb`)
import app.cli.public_sets  # noqa: F401  (registers `images import chexpert|mimic`)
from app.cli.analyse import analyse_group
from app.cli.demo import demo
from app.cli.extractors import register_inception
from app.cli.gan import gan
from app.cli.images import images, phantoms
from app.cli.models import models, sample
from app.cli.serving import run_server
from app.core.config import get_settings
from app.domain.errors import DomainError


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def cli(verbose: bool) -> None:
    """CXR Realism Lab: reader studies of real versus synthetic chest X-rays."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (starts the embedded server when DATABASE_URL is unset)."""
    from app.persistence.db import get_engine
    from app.persistence.migrate import upgrade

    upgrade(get_engine(), revision)
    click.echo(f"database at {revision}")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from app.persistence.db import get_engine
    from app.persistence.migrate import check

    check(get_engine())
    click.echo("no drift between models and migrations")


@cli.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.option("--role", type=click.Choice(["admin", "researcher", "reader"]), required=True)
@click.option("--password", default=None, help="Set directly; without it an invitation link is printed.")
def users_create(email: str, name: str, role: str, password: str | None) -> None:
    """Create a user; prints a one-time invitation path when no password is given."""
    from app.domain import users as users_domain
    from app.persistence.db import session_scope

    settings = get_settings()
    with session_scope() as session:
        user = users_domain.create_user(session, email=email, name=name, role=role, password=password)
        token = (
            None
            if password
            else users_domain.invite(session, user, ttl_hours=settings.invite_ttl_hours, actor_id=None)
        )
    click.echo(f"created {role} {user.email} ({user.pseudonym})")
    if token:
        click.echo(f"invitation: http://{settings.host}:{settings.port}/invite/{token}")


@cli.command()
@click.option("--host", default=None, help="Defaults to HOST.")
@click.option("--port", default=None, type=int, help="Defaults to PORT.")
@click.option("--migrate/--no-migrate", default=True, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Web processes; 0 or unset: WEB_WORKERS, or one per CPU core.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="A log line per request.")
def serve(host: str | None, port: int | None, migrate: bool, workers: int | None, access_log: bool) -> None:
    """Run the web application (migrating first)."""
    run_server(host=host, port=port, migrate=migrate, workers=workers, access_log=access_log)


@cli.command()
@click.option("--queues", default="gpu,cpu", show_default=True, help="Comma-separated queues to consume.")
@click.option("--concurrency", type=int, default=1, show_default=True, help="Jobs at once (1 per GPU).")
@click.option("--name", default=None, help="Worker name in logs (default: procrastinate's).")
def worker(queues: str, concurrency: int, name: str | None) -> None:
    """Run jobs that admins start in the browser (training, sampling, imports) until stopped."""
    from app.jobs.worker import run_worker

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    if not wanted or concurrency < 1:
        raise click.UsageError("give at least one queue and a concurrency of 1 or more")
    logging.getLogger().setLevel(logging.INFO)  # job starts and ends belong in a worker's log
    run_worker(wanted, concurrency, name)


cli.add_command(images)
cli.add_command(phantoms)
cli.add_command(demo)
cli.add_command(gan)
cli.add_command(models)
cli.add_command(sample)
cli.add_command(register_inception)
cli.add_command(analyse_group, name="analyse")


def main() -> None:
    """Entry point: domain errors become a one-line message and exit status 2."""
    try:
        cli(standalone_mode=True)
    except DomainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
