"""Builders of test data through the real domain functions (no shortcuts into tables)."""

from __future__ import annotations

import re

from app.domain import studies, users
from app.domain.importers import ImportSpec, import_images
from app.domain.studies import StudyDesign

PASSWORD = "correct-horse-battery"


def user(session, role: str, email: str, *, intake: bool = True):
    """A user with PASSWORD; readers get their intake done unless intake=False."""
    u = users.create_user(session, email=email, name=email.split("@")[0], role=role, password=PASSWORD)
    if role == "reader" and intake:
        users.save_intake(session, u, years_experience=7, specialty="Radiology", board_certified=True)
    return u


def phantom_set(session, store, *, name: str, kind: str, n: int = 12, size: int = 64, seed: int = 0):
    """An image set of phantoms imported through the normal path."""
    from app.cli.images import phantom_items
    from app.ml import phantoms as ph

    spec = ImportSpec(
        name=name, kind=kind, label_schema=tuple(ph.FINDINGS), resolution=size, source="phantoms"
    )
    return import_images(
        session, store, spec, phantom_items(n, size=size, seed=seed, demo=True), actor_id=None
    )


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
