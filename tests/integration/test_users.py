"""Accounts: invitations, intake, deactivation, rate-limited sign-in, session cookie flags."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.persistence.models import User
from tests import factories


def _invite(admin, name: str, email: str):
    """Create a reader through the admin form; returns the response that shows the invitation link."""
    page = admin.get("/admin/users")
    data = {"csrf_token": factories.csrf_of(page.text), "name": name, "email": email, "role": "reader"}
    return admin.post("/admin/users", data=data)


def test_invite_set_password_intake_then_reading(session, people, signed_in, make_client):
    admin = signed_in("admin")
    r = _invite(admin, "Dr. New", "New@Test.org")
    assert r.status_code == 200
    link = re.search(r'value="(http://testserver/invite/[^"]+)"', r.text).group(1)
    path = link.removeprefix("http://testserver")

    invitee = make_client()
    form = invitee.get(path)
    assert form.status_code == 200 and "new@test.org" in form.text
    token = factories.csrf_of(form.text)
    weak_ones = (("aaaaaaaaaa", "12 characters"), ("aaaaaaaaaaaa", "different"), ("qwertyuiop12", "guess"))
    for weak, why in weak_ones:
        r = invitee.post(path, data={"csrf_token": token, "password": weak, "confirm": weak})
        assert r.status_code == 422 and why in r.text
    r = invitee.post(
        path,
        data={"csrf_token": token, "password": "tulip river glass", "confirm": "tulip river glass"},
    )
    assert r.status_code == 200 and str(r.url).endswith("/intake")
    assert str(invitee.get("/read").url).endswith("/intake")  # no reading before the intake
    r = invitee.post(
        "/intake",
        data={
            "csrf_token": factories.csrf_of(r.text),
            "years_experience": "12",
            "specialty": "Thoracic radiology",
            "board_certified": "yes",
        },
    )
    assert r.status_code == 200 and str(r.url).endswith("/read")
    user = session.scalar(select(User).where(User.email == "new@test.org"))
    assert (user.years_experience, user.specialty, user.board_certified) == (12, "Thoracic radiology", True)
    assert user.password_hash.startswith("$argon2id$")
    again = make_client().get(path)
    assert again.status_code == 404 and "already used" in again.text


def test_a_new_invitation_link_replaces_the_old_one(session, people, signed_in, make_client):
    admin = signed_in("admin")
    r = _invite(admin, "Dr. Two", "two@test.org")
    old = re.search(r'value="http://testserver(/invite/[^"]+)"', r.text).group(1)
    user = session.scalar(select(User).where(User.email == "two@test.org"))
    r = admin.post(f"/admin/users/{user.id}/invite", data={"csrf_token": factories.csrf_of(r.text)})
    new = re.search(r'value="http://testserver(/invite/[^"]+)"', r.text).group(1)
    assert new != old
    assert make_client().get(old).status_code == 404
    assert make_client().get(new).status_code == 200


def test_deactivation_ends_sessions_at_once(people, signed_in):
    reader = signed_in("reader")
    assert reader.get("/read").status_code == 200
    admin = signed_in("admin")
    token = factories.csrf_of(admin.get("/admin/users").text)
    r = admin.post(f"/admin/users/{people['reader'].id}/active", data={"csrf_token": token, "active": "no"})
    assert r.status_code == 200 and "deactivated" in r.text
    assert str(reader.get("/read").url).endswith("/login?next=/read")
    assert factories.login(reader, people["reader"].email).status_code == 401


def test_sign_in_slows_the_guessing_address_not_the_owner_elsewhere(people, db_url):
    from fastapi.testclient import TestClient

    from app.web.main import create_app

    app = create_app()
    attacker = TestClient(app, client=("203.0.113.9", 40000))
    owner = TestClient(app, client=("198.51.100.7", 40000))
    for _ in range(5):  # the free failures: answered at once
        assert factories.login(attacker, "reader@test.org", "wrong-password").status_code == 401
    r = factories.login(attacker, "reader@test.org")  # even the right password must wait now
    assert r.status_code == 429 and "Wait 2 seconds" in r.text
    # The account is not locked: its owner signs in from elsewhere at once.
    assert factories.login(owner, "reader@test.org").status_code == 200
    attacker.close()
    owner.close()


def test_the_wait_doubles_with_each_failure_up_to_the_window():
    from app.domain.users import throttle_wait

    assert [throttle_wait(n, 5, 0.0, 900) for n in range(4, 10)] == [0, 2, 4, 8, 16, 32]
    assert throttle_wait(30, 5, 0.0, 900) == 900  # never longer than the window
    assert throttle_wait(6, 5, 3.0, 900) == 1.0  # time since the last failure counts
    assert throttle_wait(6, 5, 10.0, 900) == 0.0


def test_session_cookie_flags_and_open_redirects(people, make_client):
    client = make_client()
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "email": "admin@test.org",
            "password": factories.PASSWORD,
            "csrf_token": factories.csrf_of(page.text),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/studies"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_wrong_password_and_unknown_user_look_the_same(people, make_client):
    a = factories.login(make_client(), "admin@test.org", "nope-nope-nope")
    b = factories.login(make_client(), "nobody@test.org", "nope-nope-nope")
    assert a.status_code == b.status_code == 401
    assert "Wrong email or password" in a.text and "Wrong email or password" in b.text
