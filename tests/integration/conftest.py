"""Integration fixtures: the real app over the real test database."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests import factories


@pytest.fixture(scope="session")
def _app(_database: str) -> FastAPI:
    """The app, built once per test process from the run's settings, as one process serves every request
    in production. It keeps nothing between requests that a test could see (sessions, throttles and
    tokens live in the database), and FastAPI prepares a route on its first request, which an app built
    for each test paid again. A test that needs other settings builds its own (factories.app_with_env)."""
    from app.web.main import create_app

    return create_app()


@pytest.fixture
def make_client(db_url: str, _app: FastAPI):
    """A factory of fresh clients (each with its own cookie jar) on the app."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(_app)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def people(session):
    """An admin, a researcher and two readers, committed."""
    out = {
        "admin": factories.user(session, "admin", "admin@test.org"),
        "researcher": factories.user(session, "researcher", "res@test.org"),
        "reader": factories.user(session, "reader", "reader@test.org"),
        "reader2": factories.user(session, "reader", "reader2@test.org"),
    }
    session.commit()
    return out


@pytest.fixture
def signed_in(make_client, people):
    """A signed-in client per role name of `people`."""

    def sign_in(who: str) -> TestClient:
        client = make_client()
        r = factories.login(client, people[who].email)
        assert r.status_code == 200, r.text
        return client

    return sign_in
