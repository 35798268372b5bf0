"""No input gets a 500: every route of the app's route table, as every role, with hostile values in every
path parameter, query parameter and form field it declares (and the fields of every run kind's form).

The routes come from the app itself, so a new route is covered without touching this file. The values
are the ones that broke the app before: NUL and other control characters, integers beyond the columns'
range, floats that are not numbers, and overlong text. Each request carries the client's CSRF token, so
that validation, not the CSRF check, is what answers it.
"""

from __future__ import annotations

import re
import typing
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from pydantic.fields import FieldInfo

from app.domain import studies
from app.domain.run_kinds import KINDS
from tests import factories
from tests.forms import Form, forms_of

pytestmark = pytest.mark.slow

HOSTILE = (
    "a\x00b",
    "x\x1by",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "-1",
    "1e309",
    "nan",
    "../../etc/passwd",
    "A" * 3000,
)
ROLES = (None, "reader", "researcher", "admin")
MODEL = "phantom-pggan-64"  # bundled
SKIP = {("POST", "/logout")}  # ends the client's session: covered by the auth tests


def api_routes() -> list[APIRoute]:
    """Every APIRoute of the app, through included routers (built after the fixtures set the settings)."""
    from app.web.main import create_app

    def walk(routes: typing.Iterable) -> typing.Iterator[APIRoute]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)
            elif hasattr(route, "routes"):
                yield from walk(route.routes)

    return list(walk(create_app().router.routes))


def _params(dependant) -> list:
    out = [*dependant.path_params, *dependant.query_params, *dependant.body_params]
    for sub in dependant.dependencies:
        out += _params(sub)
    return out


def plausible(field: FieldInfo) -> str:
    """A value of the field's type that could pass its validation: its default, else one by type."""
    default = field.get_default()
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (int, float, str)) and default != "":
        return str(default)
    if isinstance(default, (list, tuple)) and default:
        return ",".join(map(str, default))
    kinds = {a for a in typing.get_args(field.annotation)} | {typing.get_origin(field.annotation)}
    if typing.Literal in kinds:
        return str(typing.get_args(field.annotation)[0])
    text = str(field.annotation)
    return "1" if "int" in text else "0.5" if "float" in text else "true" if "bool" in text else "x"


def form_fields(route: APIRoute) -> tuple[list[str], dict[str, str]]:
    """(query parameter names, {form field: plausible value}) the route reads, form models included."""
    query, form = [], {}
    for p in _params(route.dependant):
        annotation = p.field_info.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            form |= {name: plausible(f) for name, f in annotation.model_fields.items()}
        elif p in route.dependant.query_params or type(p.field_info).__name__ == "Query":
            query.append(p.alias)
        elif p not in route.dependant.path_params:
            form[p.alias] = plausible(p.field_info)
    form.pop("csrf_token", None)
    return query, form


Fields = dict[str, str]


def variants(method: str, route: APIRoute, form: Fields) -> list[tuple[Fields, Fields]]:
    """(fixed fields, {field: plausible value}) per request shape: the run form reads each kind's fields."""
    if route.path == "/runs" and method == "POST":
        return [
            ({"kind": name}, {f: plausible(info) for f, info in kind.config.model_fields.items()})
            for name, kind in KINDS.items()
        ]
    return [({}, form)]


@pytest.fixture
def routes(db_url) -> list[tuple[str, APIRoute]]:
    """(method, route) pairs of the app built from the test settings."""
    return [(method, route) for route in api_routes() for method in sorted(route.methods)]


def test_the_route_table_is_found(routes):
    paths = {route.path for _, route in routes}
    assert {"/login", "/studies/{study_id}", "/read/{study_id}/case", "/runs"} <= paths and len(routes) > 50


@pytest.fixture
def clients(db_url, people):
    """A client and its CSRF token per role (None: signed out); a server error is a response to count,
    not an exception that would stop the sweep at the first one."""
    from fastapi.testclient import TestClient

    from app.web.main import create_app

    app, out = create_app(), {}
    for role in ROLES:
        client = TestClient(app, raise_server_exceptions=False)
        if role is not None:
            assert factories.login(client, people[role].email).status_code == 200
        out[role] = (client, factories.csrf_of(client.get("/login" if role is None else "/").text))
    yield out
    for client, _ in out.values():
        client.close()


def test_no_route_answers_a_hostile_value_with_a_server_error(clients, routes):
    """Every field hostile at once, as every role: what reaches each role's checks."""
    failures = []
    for method, route in routes:
        if (method, route.path) in SKIP or method not in ("GET", "POST"):
            continue
        query, form = form_fields(route)
        for value in HOSTILE:
            path = re.sub(r"\{[^}]+\}", lambda _, v=quote(value, safe=""): v, route.path)
            for role in ROLES:
                client, token = clients[role]
                params = {name: value for name in query}
                if method == "GET":
                    responses = [client.get(path, params=params, follow_redirects=False)]
                else:
                    responses = [
                        client.post(
                            path,
                            params=params,
                            data={name: value for name in fields} | fixed | {"csrf_token": token},
                            follow_redirects=False,
                        )
                        for fixed, fields in variants(method, route, form)
                    ]
                if any(r.status_code >= 500 for r in responses):
                    failures.append(f"{method} {route.path} as {role or 'anonymous'} with {value[:20]!r}")
    assert not failures, f"{len(failures)} server errors, e.g. " + "; ".join(failures[:10])


@pytest.fixture
def world(session, store, people) -> dict[str, str]:
    """Real objects for the path parameters, so that hostile fields reach the code behind the lookups:
    a draft study (for /studies/...), a launched one `reader` reads (for /read/...), a set, an image,
    a run and a user who is not one of the signed-in clients."""
    from sqlalchemy import select

    from app.domain import runs
    from app.persistence.models import Image, ReaderCase

    launched = factories.launched_study(session, store, readers=[people["reader"]], creator=people["admin"])
    set_ids = sorted(set(session.scalars(select(Image.image_set_id))))
    design = studies.StudyDesign(
        title="Draft", image_set_ids=set_ids, n_cases=6, resolution=64, reader_ids=[people["reader"].id]
    )
    draft = studies.create_study(session, store, design, actor_id=people["admin"].id)
    image = session.scalars(select(Image).order_by(Image.id)).first()
    served = session.scalars(select(ReaderCase.opaque_id).where(ReaderCase.study_id == launched.id)).first()
    run, _ = runs.create(
        session, "sample", {"model": MODEL, "n": 2}, actor_id=people["admin"].id, request_key=None
    )
    session.commit()
    return {
        "read_study_id": str(launched.id),
        "study_id": str(draft.id),
        "set_id": str(image.image_set_id),
        "image_id": str(image.id),
        "run_id": str(run.id),
        "user_id": str(people["reader2"].id),
        "opaque_id": served,
        "name": MODEL,
        "token": "not-a-token",
        "fmt": "svg",
    }


def role_for(path: str) -> str | None:
    """The role that gets furthest into a route: readers read, nobody signs in twice, staff do the rest."""
    if path.startswith("/read") or path == "/intake":
        return "reader"
    if path.startswith(("/login", "/invite")):
        return None
    return "admin"


def filled(path: str, world: dict[str, str]) -> str:
    """The route's path with the world's objects in its parameters."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        return world["read_study_id" if path.startswith("/read") and name == "study_id" else name]

    return re.sub(r"\{([^}]+)\}", one, path)


def test_one_hostile_field_among_plausible_ones_never_gets_a_server_error(clients, routes, world):
    """One field hostile, the others plausible, so that the hostile value reaches the code behind the
    validation of the others (a NUL in one text field of an otherwise valid form was a 500)."""
    failures = []
    for method, route in routes:
        if (method, route.path) in SKIP or method != "POST":
            continue
        query, form = form_fields(route)
        client, token = clients[role_for(route.path)]
        path = filled(route.path, world)
        for fixed, fields in variants(method, route, form):
            for name in fields:
                for value in HOSTILE:
                    data = fields | {name: value} | fixed | {"csrf_token": token}
                    r = client.post(path, data=data, follow_redirects=False)
                    if r.status_code >= 500:
                        failures.append(f"POST {route.path} {fixed} {name}={value[:20]!r}")
    assert not failures, f"{len(failures)} server errors, e.g. " + "; ".join(failures[:10])


def test_nul_in_the_login_form_and_an_id_beyond_the_column_are_422_with_the_field_named(clients):
    client, token = clients[None]
    r = client.post("/login", data={"email": "a\x00b@x.org", "password": "x", "csrf_token": token})
    assert r.status_code == 422 and "email" in r.text and "control character" in r.text
    admin, _ = clients["admin"]
    r = admin.get("/studies/2147483648")
    assert r.status_code == 422 and "study_id" in r.text
    r = admin.get("/studies/new", params={"image_set_ids": "9223372036854775808"})
    assert r.status_code == 422 and "image_set_ids" in r.text


def test_the_api_schema_is_not_served(clients):
    for role in ROLES:
        client, _ = clients[role]
        assert client.get("/openapi.json").status_code == 404


DEEP = ("a\x00b", "x\x1by", "2147483648", "9223372036854775808", "-9223372036854775809", "nan", "A" * 3000)
SKIP_ACTIONS = re.compile(r"/logout$|/active$")  # would sign the sweep's own clients out


def test_every_form_of_every_page_survives_one_hostile_field(clients, routes, world):
    """The forms the pages really show, submitted as a browser would with one field changed: a valid
    submission but for that field, so the value reaches the domain and the database behind validation."""
    urls = [filled(route.path, world) for method, route in routes if method == "GET"]
    urls += [f"/runs/new?kind={kind}" for kind in KINDS]
    found: dict[tuple[str | None, str], Form] = {}
    for role in (None, "reader", "admin"):
        client, _ = clients[role]
        for url in dict.fromkeys(urls):
            r = client.get(url, follow_redirects=False)
            if r.status_code == 200 and r.headers.get("content-type", "").startswith("text/html"):
                for form in forms_of(r.text):
                    if form.method == "post" and form.action and not SKIP_ACTIONS.search(form.action):
                        found.setdefault((role, form.action), form)
    assert any(action == "/runs" for _, action in found) and len(found) > 10, sorted(found)
    failures = []
    for (role, action), form in found.items():
        client, token = clients[role]
        for i, (name, _) in enumerate(form.fields):
            if name == "csrf_token":
                continue
            for value in DEEP:
                data: dict[str, list[str]] = {}
                for j, (key, kept) in enumerate(form.fields):
                    sent = value if j == i else token if key == "csrf_token" else kept
                    data.setdefault(key, []).append(sent)
                r = client.post(action, data=data, follow_redirects=False)
                if r.status_code >= 500:
                    failures.append(f"{action} as {role or 'anonymous'}: {name}={value[:20]!r}")
    assert not failures, f"{len(failures)} server errors, e.g. " + "; ".join(failures[:10])
