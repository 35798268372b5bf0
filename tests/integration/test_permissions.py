"""Every route x role: who gets in, who gets 403/404, and anonymous users get the login page."""

from __future__ import annotations

import re

import pytest

from tests import factories

OK, FORBIDDEN, NOT_FOUND, CONFLICT, LOGIN = 200, 403, 404, 409, "login"
MODEL = "phantom-pggan-64"  # bundled
STAFF_ONLY = {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}
ADMIN_ONLY = {"admin": OK, "researcher": FORBIDDEN, "reader": FORBIDDEN, "reader2": FORBIDDEN}


@pytest.fixture
def world(session, store, people):
    """A launched study read by `reader` (not `reader2`), with one image to fetch."""
    study = factories.launched_study(session, store, readers=[people["reader"]], creator=people["researcher"])
    session.commit()
    from app.persistence.repositories import studies

    case = studies.cases(session, study.id)[0]
    from app.persistence.models import Image

    image = session.get(Image, case.image_id)
    from app.domain import runs

    run, _ = runs.create(
        session, "sample", {"model": MODEL, "n": 2}, actor_id=people["admin"].id, request_key=None
    )
    session.commit()
    from sqlalchemy import select

    from app.persistence.models import ReaderCase

    served = session.scalar(  # the id `reader` is served this case under (staff may use it too)
        select(ReaderCase.opaque_id).where(
            ReaderCase.case_id == case.id, ReaderCase.reader_id == people["reader"].id
        )
    )
    ids = {"study": study.id, "case": served, "set": image.image_set_id, "image": image.id}
    return ids | {"run": run.id, "model": MODEL}


GET_MATRIX = [
    # path template, {role: expected}
    ("/admin/users", {"admin": OK, "researcher": FORBIDDEN, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/image-sets", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/image-sets/{set}", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    (
        "/image-sets/{set}/images/{image}",
        {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN},
    ),
    ("/studies", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/studies/new", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/studies/{study}", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/studies/{study}/edit", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/studies/{study}/results", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    ("/studies/{study}/progress", {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN}),
    (
        "/studies/{study}/export.csv",
        {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN},
    ),
    (
        "/studies/{study}/codebook.csv",
        {"admin": OK, "researcher": OK, "reader": FORBIDDEN, "reader2": FORBIDDEN},
    ),
    *[
        (f"/studies/{{study}}/{path}", STAFF_ONLY)
        for path in ("analysis.json", "ratings.imrmc", "report", "figures/roc.svg")
    ],
    ("/read", {"admin": FORBIDDEN, "researcher": FORBIDDEN, "reader": OK, "reader2": OK}),
    ("/read/{study}", {"admin": FORBIDDEN, "researcher": FORBIDDEN, "reader": OK, "reader2": NOT_FOUND}),
    ("/read/{study}/case", {"admin": FORBIDDEN, "researcher": FORBIDDEN, "reader": OK, "reader2": NOT_FOUND}),
    ("/img/{case}", {"admin": OK, "researcher": OK, "reader": OK, "reader2": NOT_FOUND}),
    ("/runs", STAFF_ONLY),
    ("/runs?kind=sample&status=queued", STAFF_ONLY),
    ("/runs/new", ADMIN_ONLY),
    ("/runs/new?kind=train_gan", ADMIN_ONLY),
    ("/runs/new?kind=train_classifier", ADMIN_ONLY),
    ("/runs/new?kind=lco", ADMIN_ONLY),
    ("/runs/new?kind=synth_vs_real", ADMIN_ONLY),
    ("/runs/new?kind=evaluation", ADMIN_ONLY),
    (
        "/runs/{run}/synth_vs_real.csv",  # this run has no table: staff learn that, readers nothing
        {"admin": NOT_FOUND, "researcher": NOT_FOUND, "reader": FORBIDDEN, "reader2": FORBIDDEN},
    ),
    ("/runs/{run}", STAFF_ONLY),
    ("/runs/{run}/live", STAFF_ONLY),
    ("/models", STAFF_ONLY),
    ("/models/{model}/samples.png", STAFF_ONLY),
    ("/models/{model}", STAFF_ONLY),
    ("/extractors", ADMIN_ONLY),
    ("/runs/new?kind=memorisation", ADMIN_ONLY),
    (
        "/runs/{run}/memorisation.csv",  # not a memorisation run: staff learn that, readers nothing
        {"admin": NOT_FOUND, "researcher": NOT_FOUND, "reader": FORBIDDEN, "reader2": FORBIDDEN},
    ),
    (
        "/runs/{run}/evaluation.csv",
        {"admin": NOT_FOUND, "researcher": NOT_FOUND, "reader": FORBIDDEN, "reader2": FORBIDDEN},
    ),
]


@pytest.mark.parametrize("template,expected", GET_MATRIX, ids=[t for t, _ in GET_MATRIX])
def test_get_matrix(world, signed_in, make_client, template, expected):
    path = template.format(**world)
    for role, status in expected.items():
        response = signed_in(role).get(path)
        assert response.status_code == status, (role, path, response.text[:300])
    anon = make_client().get(path, follow_redirects=False)
    assert anon.status_code == 303 and anon.headers["location"].startswith("/login"), path


POST_MATRIX = [
    ("/admin/users", {"name": "X", "email": "x@test.org", "role": "reader"}, {"admin": OK}),
    ("/studies/{study}/close", {}, {"researcher": OK}),
    ("/studies/{study}/readers", {"reader_id": "0"}, {}),
    ("/image-sets", {"name": "n", "kind": "real"}, {}),
    ("/runs", {"kind": "sample", "model": MODEL, "n": "2"}, {"admin": OK}),
    ("/runs/{run}/cancel", {}, {"admin": OK}),
    ("/runs/{run}/retry", {}, {"admin": CONFLICT}),  # a queued run cannot be retried
    ("/models/default", {"name": MODEL}, {"admin": OK}),
    ("/studies/{study}/leakage", {}, {}),  # staff may check a study; readers may not
]


@pytest.mark.parametrize("template,data,allowed", POST_MATRIX, ids=[t for t, _, _ in POST_MATRIX])
def test_post_matrix(world, signed_in, make_client, template, data, allowed):
    path = template.format(**world)
    denied = {"admin": FORBIDDEN, "researcher": FORBIDDEN, "reader": FORBIDDEN, "reader2": FORBIDDEN}
    if "/studies/" in path:
        denied.update(admin=None, researcher=None)  # staff may post; checked by other tests
    if path == "/image-sets":
        denied.update(admin=None)
    for role, status in {**denied, **allowed}.items():
        if status is None:
            continue
        client = signed_in(role)
        token = factories.csrf_of(client.get("/").text)
        response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == status, (role, path, response.text[:300])


def test_reader_pages_carry_no_truth(world, signed_in, session):
    reader = signed_in("reader")
    page = reader.get(f"/read/{world['study']}/case").text
    region = page.split('id="case-region"')[1]
    for leak in ("truth", "Real phantoms", "image_set", "sha256", "label_", "provenance", "phantom-"):
        assert leak not in region
    case_id = re.search(r'name="case_id" value="([^"]+)"', page).group(1)
    assert not case_id.isdigit() and len(case_id) >= 20


def test_image_headers_are_identical_for_real_and_synthetic(world, signed_in, session):
    from app.persistence.repositories import studies

    cases = studies.cases(session, world["study"])
    reader = signed_in("researcher")
    headers = {}
    for truth in ("real", "synthetic"):
        case = next(c for c in cases if c.truth == truth)
        r = reader.get(f"/img/{case.opaque_id}")
        headers[truth] = {k: v for k, v in r.headers.items() if k.lower() not in ("content-length", "date")}
    assert headers["real"] == headers["synthetic"]
    assert "etag" not in headers["real"] and "last-modified" not in headers["real"]


def test_csrf_is_required(signed_in):
    admin = signed_in("admin")
    r = admin.post("/admin/users", data={"name": "X", "email": "x@test.org", "role": "reader"})
    assert r.status_code == 403 and "expired" in r.text
    r = admin.post(
        "/admin/users", data={"name": "X", "email": "x@test.org", "role": "reader", "csrf_token": "forged"}
    )
    assert r.status_code == 403


def test_researchers_see_runs_without_controls(world, signed_in):
    page = signed_in("researcher").get(f"/runs/{world['run']}").text
    assert "queued" in page and "/cancel" not in page and "/retry" not in page
    assert "/runs/new" not in signed_in("researcher").get("/runs").text
    admin_page = signed_in("admin").get(f"/runs/{world['run']}").text
    assert f"/runs/{world['run']}/cancel" in admin_page


def test_a_study_belongs_to_its_owner_its_collaborators_and_admins(world, session, signed_in, make_client):
    """Another researcher gets 404 on every page and action of the study until the owner adds them."""
    other = factories.user(session, "researcher", "other@test.org")
    session.commit()
    outsider = make_client()
    assert factories.login(outsider, other.email).status_code == 200
    study = world["study"]
    for path in (
        "",
        "/edit",
        "/results",
        "/progress",
        "/export.csv",
        "/codebook.csv",
        "/analysis.json",
        "/ratings.imrmc",
        "/report",
        "/figures/roc.svg",
    ):
        assert outsider.get(f"/studies/{study}{path}").status_code == NOT_FOUND, path
    token = factories.csrf_of(outsider.get("/studies").text)
    for action in ("launch", "close", "leakage", "readers", "collaborators"):
        data = {"csrf_token": token, "reader_id": "1", "user_id": "1"}
        r = outsider.post(f"/studies/{study}/{action}", data=data)
        assert r.status_code == NOT_FOUND, action
    assert f'/studies/{study}"' not in outsider.get("/studies").text  # not listed either

    owner = signed_in("researcher")
    page = owner.get(f"/studies/{study}").text
    assert "Add collaborator" in page and "other@test.org" not in page
    data = {"csrf_token": factories.csrf_of(page), "user_id": str(other.id)}
    r = owner.post(f"/studies/{study}/collaborators", data=data)
    assert r.status_code == OK
    assert outsider.get(f"/studies/{study}").status_code == OK
    assert outsider.get(f"/studies/{study}/results").status_code == OK
    assert f'/studies/{study}"' in outsider.get("/studies").text
    # A collaborator manages the study but cannot hand it on; an admin sees every study.
    r = outsider.post(f"/studies/{study}/collaborators", data={"csrf_token": token, "user_id": str(other.id)})
    assert r.status_code == CONFLICT
    assert signed_in("admin").get(f"/studies/{study}").status_code == OK


def test_an_order_drawn_before_per_reader_ids_is_served_under_the_cases_id(
    world, signed_in, session, owner_engine
):
    """An order entry without an id of its own (drawn before ids were per reader) serves its image under
    the case's id to its reader; a reader outside the study gets nothing under it."""
    from sqlalchemy import select, text

    from app.persistence.models import Case, ReaderCase

    entry_id, case_opaque = session.execute(
        select(ReaderCase.id, Case.opaque_id)
        .join(Case, Case.id == ReaderCase.case_id)
        .where(ReaderCase.opaque_id == world["case"])
    ).one()
    session.rollback()
    with owner_engine.begin() as conn:  # as such an order is stored: past the guard of launched orders
        conn.execute(text("ALTER TABLE reader_cases DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE reader_cases SET opaque_id = NULL WHERE id = :id"), {"id": entry_id})
        conn.execute(text("ALTER TABLE reader_cases ENABLE TRIGGER USER"))
    reader, other = signed_in("reader"), signed_in("reader2")
    assert reader.get(f"/img/{case_opaque}").content.startswith(b"\x89PNG")
    assert reader.get(f"/img/{world['case']}").status_code == NOT_FOUND
    assert other.get(f"/img/{case_opaque}").status_code == NOT_FOUND
