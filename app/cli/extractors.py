"""`cxrlab register-inception FILE`: register the Inception-v3 weights of FID from a local file.

The same registration as the admin page's upload (app.domain.extractors). Where torch is installed, the
file is first loaded as a worker would load it (tensors only, into torch-fidelity's network), so a file
that would fail every evaluation is refused here already.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

import click

from app.core.config import get_settings
from app.domain.errors import Invalid


@click.command("register-inception")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def register_inception(path: Path) -> None:
    """Register PATH (e.g. weights-inception-2015-12-05-6726825d.pth) as the Inception weights of FID."""
    from app.domain import extractors
    from app.persistence.db import session_scope

    try:
        # The torch-free check first: it reads the pickle's opcodes only, and names a hostile global.
        extractors.inspect_torch_file(path)
    except Invalid as exc:
        raise Invalid(f"{path.name} is not usable: {exc}") from exc
    try:
        from app.ml.metrics.inception import load_inception
    except ImportError:  # a web-only install: the worker will check the file before its first use
        load_inception = None
    if load_inception is not None:
        try:
            load_inception(path.read_bytes())
        except ValueError as exc:  # a refusal like any other: main() prints it and exits with 2
            raise Invalid(f"{path.name} is not usable: {exc}") from exc
    who = f"command line ({getpass.getuser()}@{socket.gethostname()})"
    with session_scope() as session, path.open("rb") as source:
        reg = extractors.register(
            session,
            get_settings().models_dir,
            source,
            original_name=path.name,
            registered_by=who,
            actor_id=None,
        )
    click.echo(f"registered {path.name}: sha256 {reg.sha256}, {reg.size:,} bytes")
    if reg.official:
        click.echo(
            "these are the official FID weights (torch-fidelity's conversion of the 2015 TensorFlow graph)"
        )
    else:
        click.echo(
            f"note: the sha256 does not begin with {extractors.OFFICIAL_SHA256_PREFIX}; these are not the "
            "official FID weights, so results will not be comparable with published FIDs"
        )
