"""Registering the Inception weights: the admin page's upload and `cxrlab register-inception`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.domain import extractors
from app.persistence.models import AuditEvent
from tests import factories
from tests.factories import random_inception_weights, upload_inception

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Inception saved like the official file (95 MB of tensors)."""
    return random_inception_weights(tmp_path_factory.mktemp("weights") / "random-inception.pth")


def folder_contents(store_dir: Path) -> list[str]:
    base = store_dir / "models" / extractors.EXTRACTORS_DIR
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")) if base.exists() else []


def test_only_admins_see_the_page_and_it_says_how_to_obtain_the_file(signed_in):
    for who in ("researcher", "reader"):
        client = signed_in(who)
        assert client.get("/extractors").status_code == 403
        token = factories.csrf_of(client.get("/runs").text) if who == "researcher" else None
        if token:
            r = client.post(
                "/extractors/inception", data={"csrf_token": token}, files={"file": ("w.pth", b"x")}
            )
            assert r.status_code == 403
    page = signed_in("admin").get("/extractors")
    assert page.status_code == 200
    assert extractors.OFFICIAL_FILE in page.text and "torch-fidelity" in page.text
    assert "cxrlab register-inception" in page.text and "domain Fréchet distance" in page.text


def test_upload_registers_the_file_with_its_sha256(signed_in, session, store_dir, weights, people):
    admin = signed_in("admin")
    content = weights.read_bytes()
    r = upload_inception(admin, "random-inception.pth", content)
    assert r.status_code == 303, r.text
    sha = hashlib.sha256(content).hexdigest()
    manifest = json.loads((extractors.folder(store_dir / "models") / "manifest.json").read_text())
    assert manifest["sha256"] == sha and manifest["size"] == len(content)
    assert (
        manifest["original_name"] == "random-inception.pth" and manifest["registered_by"] == "admin@test.org"
    )
    assert manifest["official"] is False and manifest["format"] == "zip" and manifest["registered_at"]
    assert folder_contents(store_dir) == [
        ".lock",
        extractors.INCEPTION,
        f"{extractors.INCEPTION}/{sha}.pth",
    ] + [f"{extractors.INCEPTION}/manifest.json"]
    event = session.scalar(select(AuditEvent).where(AuditEvent.entity == "extractor"))
    assert event.action == "register" and event.new["sha256"] == sha and event.actor_id == people["admin"].id
    page = admin.get("/extractors").text
    assert sha in page and "not the official file" in page and extractors.OFFICIAL_FILE not in page
    # The evaluate form no longer explains how to obtain the file.
    assert "inception-how-to" not in admin.get("/runs/new?kind=evaluation").text


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "The file is empty."), (b"GIF89a, not weights at all", "not a PyTorch weights file")],
)
def test_a_bad_upload_is_refused_and_leaves_nothing_behind(signed_in, store_dir, content, message):
    r = upload_inception(signed_in("admin"), "weights.pth", content)
    assert r.status_code == 422 and message in r.text
    assert folder_contents(store_dir) == []
    assert extractors.registered(store_dir / "models") is None


def test_a_bad_upload_keeps_the_registered_file(signed_in, store_dir, weights):
    admin = signed_in("admin")
    assert upload_inception(admin, "w.pth", weights.read_bytes()).status_code == 303
    before = folder_contents(store_dir)
    assert upload_inception(admin, "w.pth", b"not weights").status_code == 422
    assert folder_contents(store_dir) == before and extractors.registered(store_dir / "models") is not None


def test_command_line_registration(db_url, store_dir, weights, tmp_path):
    cli = [sys.executable, "-c", "from app.cli.main import main; main()", "register-inception"]
    bad = tmp_path / "notes.pth"
    bad.write_text("hello")
    out = subprocess.run([*cli, str(bad)], env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "notes.pth is not usable" in out.stderr
    assert extractors.registered(store_dir / "models") is None
    out = subprocess.run(
        [*cli, str(weights)], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    reg = extractors.registered(store_dir / "models")
    assert reg is not None and reg.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert f"sha256 {reg.sha256}" in out.stdout and "not the official FID weights" in out.stdout
    assert reg.registered_by.startswith("command line")


class Payload:
    """Unpickling this would call os.system."""

    def __reduce__(self):
        return (os.system, ("echo owned",))


class Layer:
    """Pickled as a whole torch module class: torch-named, so only torch's own loader refuses it."""

    def __reduce__(self):
        import torch

        return (torch.nn.Linear, (1, 1))


@pytest.mark.parametrize(("payload", "named"), [(Payload, "posix"), (Layer, "Linear")])
def test_command_line_refuses_a_hostile_file_with_status_2_and_no_advice_to_trust_it(
    db_url, store_dir, tmp_path, payload, named
):
    import torch

    evil = tmp_path / "evil.pth"
    torch.save({**{k: torch.zeros(2) for k in extractors.REQUIRED_KEYS}, "x": payload()}, evil)
    cli = [sys.executable, "-c", "from app.cli.main import main; main()", "register-inception"]
    out = subprocess.run([*cli, str(evil)], env=dict(os.environ), capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "evil.pth is not usable" in out.stderr and named in out.stderr
    assert "weights_only" not in out.stderr + out.stdout and "safe_globals" not in out.stderr
    assert "owned" not in out.stdout + out.stderr
    assert extractors.registered(store_dir / "models") is None and folder_contents(store_dir) == []
