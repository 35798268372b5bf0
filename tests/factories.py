"""Builders of test data through the real domain functions (no shortcuts into tables), and the helpers
that several test modules share: runs through the form and the queue, answers through the case page, files.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from PIL import Image, PngImagePlugin

from app.domain import studies, users
from app.domain.importers import ImportSpec, SourceImage, import_images
from app.domain.studies import StudyDesign
from app.persistence.db import get_sessionmaker
from app.persistence.models import Run
from tests.waiting import patiently

PASSWORD = "correct-horse-battery"


def user(session, role: str, email: str, *, intake: bool = True):
    """A user with PASSWORD; readers get their intake done unless intake=False."""
    u = users.create_user(session, email=email, name=email.split("@")[0], role=role, password=PASSWORD)
    if role == "reader" and intake:
        users.save_intake(session, u, years_experience=7, specialty="Radiology", board_certified=True)
    return u


@lru_cache(maxsize=32)
def _phantom_items(n: int, size: int, seed: int) -> tuple[SourceImage, ...]:
    """The demo phantoms as import items, made once per test process: the generator is deterministic, and
    drawing the films took most of a small import's time (0.2 s a set, two sets a launched study)."""
    from app.cli.images import phantom_items

    items = tuple(phantom_items(n, size=size, seed=seed, demo=True))
    for item in items:
        item.pixels.setflags(write=False)  # shared by every test that asks for the same films
    return items


def phantom_set(session, store, *, name: str, kind: str, n: int = 12, size: int = 64, seed: int = 0):
    """An image set of phantoms imported through the normal path."""
    from app.ml import phantoms as ph

    spec = ImportSpec(
        name=name, kind=kind, label_schema=tuple(ph.FINDINGS), resolution=size, source="phantoms"
    )
    items = [replace(item, provenance=dict(item.provenance)) for item in _phantom_items(n, size, seed)]
    return import_images(session, store, spec, items, actor_id=None)


def launched_study(
    session,
    store,
    *,
    readers: list,
    creator,
    n_cases: int = 6,
    practice: int = 0,
    real=None,
    synthetic=None,
    **options,
):
    """Two phantom sets and a launched study over them."""
    real = real or phantom_set(session, store, name="real", kind="real", seed=0)
    synthetic = synthetic or phantom_set(session, store, name="synthetic", kind="synthetic", seed=1)
    design = StudyDesign(
        title="Test study",
        image_set_ids=[real.id, synthetic.id],
        n_cases=n_cases,
        practice_cases=practice,
        resolution=64,
        reader_ids=[r.id for r in readers],
        seed=7,
        **options,
    )
    study = studies.create_study(session, store, design, actor_id=creator.id)
    studies.launch(session, store, study.id, actor_id=creator.id)
    assert study.status == "launched", study.leakage  # phantoms against phantoms pass the leakage gate
    return study


def app_with_env(monkeypatch, **env: str):
    """A fresh app built with these settings added to the environment (monkeypatch restores it after the
    test); the settings cache is reset around the build."""
    from app.core.config import get_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        from app.web.main import create_app

        return create_app()
    finally:
        get_settings.cache_clear()


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms; every form field must carry it (an empty one is a bug)."""
    assert 'name="csrf_token" value=""' not in html, "a form renders an empty CSRF token"
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "page has no CSRF token"
    return m.group(1)


def login(client, email: str, password: str = PASSWORD):
    """Sign in through the form; returns the final response."""
    page = client.get("/login")
    return client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )


def answer_cases(session, study_id: int, reader, *, cases: int, skill: float) -> None:
    """Answer up to `cases` cases; with skill > 0 a reader leans towards the truth.

    Wrong answers are the surest (confidence 5), so that any error lowers the reader's AUC below 1
    whichever class it falls on.
    """
    from app.domain import readings
    from app.domain.readings import Answer

    for i in range(cases):
        view = readings.current_case(session, study_id, reader.id)
        if view is None:
            return
        truth = readings.case_by_opaque(session, view.opaque_id).truth
        right = (i * 7919 % 100) / 100 < 0.5 + skill / 2
        verdict = truth if right else ("real" if truth == "synthetic" else "synthetic")
        answer = Answer(view.opaque_id, f"token-{reader.id}-{i:04d}", verdict, 4 if right else 5)
        readings.submit(session, study_id, reader.id, answer)
        session.commit()


# --- runs, through the New-run form and the real queue ----------------------------------------------

TINY_GAN = {  # 4 -> 8 px with a few thousand images: seconds on a CPU
    "resolution": "8",
    "z_dim": "16",
    "channels": "16,16",
    "batch_sizes": "8,8",
    "fade_images": "512",
    "stable_images": "512",
    "ema_decay": "0.9",
    "metrics_every": "256",
    "grid_every": "512",
}


def run_row(run_id: int) -> Run:
    """The run as committed now (a fresh session each time)."""
    with get_sessionmaker()() as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run


def wait_for(
    run_id: int, until: Callable[[Run], bool], workers, quiet_s: float = 90, cap_s: float = 900
) -> Run:
    """Poll the run until `until(run)`; fail, with the workers' logs, once neither the run nor the workers
    have moved for `quiet_s` seconds (a busy machine is slow, not stuck: tests/waiting.py)."""

    def done() -> Run | None:
        run = run_row(run_id)
        return run if until(run) else None

    def signs() -> tuple:
        run = run_row(run_id)
        # Whole CPU seconds: an idle worker polling the queue spends less than one in a minute.
        moved = (workers.log_size(), int(workers.cpu_seconds()))
        return (run.status, run.progress, run.progress_note, run.attempt, *moved)

    what = f"run {run_id}"
    return patiently(done, signs=signs, what=what, quiet_s=quiet_s, cap_s=cap_s, explain=workers.logs)


def start_run(client, kind: str, **fields: str) -> int:
    """Fill in the New-run form as a browser would and return the new run's id."""
    page = client.get(f"/runs/new?kind={kind}")
    assert page.status_code == 200, page.text
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)
    data = {"csrf_token": csrf_of(page.text), "kind": kind, "request_key": key, **fields}
    r = client.post("/runs", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def start_tiny_training(client, session, store, **fields: str) -> int:
    """A 4 -> 8 px train_gan run on 24 phantoms, started through the form."""
    images = phantom_set(session, store, name="train", kind="real", n=24, size=32)
    session.commit()
    return start_run(client, "train_gan", image_set_id=str(images.id), **TINY_GAN, **fields)


# --- reading through the case page's form --------------------------------------------------------------


def current_case(client, study_id: int) -> str:
    """The opaque id of the case the reader's page shows now."""
    page = client.get(f"/read/{study_id}/case")
    assert page.status_code == 200, page.text
    m = re.search(r'name="case_id" value="([^"]+)"', page.text)
    assert m, page.text[:500]
    return m.group(1)


def answer_case(
    client, study_id: int, case_id: str, verdict: str, confidence: int, findings=(), token=None, **extra
):
    """Post an answer through the case page's form, as the browser would."""
    page = client.get(f"/read/{study_id}/case")
    data = {
        "case_id": case_id,
        "client_token": token or f"tok-{case_id}",
        "verdict": verdict,
        "confidence": str(confidence),
        "findings": list(findings),
        "active_ms": "1500",
        "csrf_token": csrf_of(page.text),
        **extra,
    }
    return client.post(f"/read/{study_id}/case", data=data)


# --- files -----------------------------------------------------------------------------------------------


def random_inception_weights(path: Path, seed: int = 0) -> Path:
    """torch-fidelity's Inception-v3 with random weights, saved as a state dict like the official file.

    Torch's default initialisation shrinks activations to ~1e-8 over the 90-odd layers; He-normal
    convolutions keep them alive, so the features differ from image to image."""
    import torch

    from app.ml.metrics.inception import build_network

    torch.manual_seed(seed)
    net = build_network()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


def upload_inception(client, name: str, content: bytes):
    """Post a weights file to the extractors page as an admin's browser would."""
    token = csrf_of(client.get("/extractors").text)
    return client.post(
        "/extractors/inception",
        data={"csrf_token": token},
        files={"file": (name, content, "application/octet-stream")},
        follow_redirects=False,
    )


def compressed(png: bytes) -> bytes:
    """The same pixels as an ordinary compressed PNG, as another tool would write them."""
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="PNG", compress_level=9)
    return out.getvalue()


def with_text(png: bytes) -> bytes:
    """The same PNG re-saved with a tEXt chunk, as a tool that stamps its name would write it."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "some GAN 1.0")
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()
