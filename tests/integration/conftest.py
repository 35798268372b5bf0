"""Integration fixtures: the real app over the real test database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests import factories


@pytest.fixture
def make_client(db_url: str):
    """A factory of fresh clients (each with its own cookie jar) on one app instance."""
    from app.web.main import create_app

    app = create_app()
    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(app)
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
