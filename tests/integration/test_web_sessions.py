"""Server-side sessions: logout, deactivation, a new password and an admin end them on the server; the
lifetime and the idle timeout end them by themselves; the last request is not written on every request."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from app.domain import web_sessions
from app.persistence.models import AuditEvent, WebSession
from tests import factories


def _copy(make_client, client):
    """A second browser holding a copy of `client`'s cookies (a stolen or shared cookie)."""
    other = make_client()
    for name, value in client.cookies.items():
        other.cookies.set(name, value)
    return other


def _signed_out(client, path: str = "/read") -> bool:
    return str(client.get(path).url).endswith(f"/login?next={path}")


def _rows(session, user_id: int) -> list[WebSession]:
    session.expire_all()
    return list(
        session.scalars(select(WebSession).where(WebSession.user_id == user_id).order_by(WebSession.id))
    )


def _age(session, user_id: int, column: str, seconds: float) -> None:
    """Move a user's sessions' `column` back in time, as if that much time had passed."""
    session.execute(
        text(f"UPDATE web_sessions SET {column} = now() - make_interval(secs => :s) WHERE user_id = :u"),
        {"s": seconds, "u": user_id},
    )
    session.commit()


def test_logout_ends_the_session_for_a_copied_cookie_too(session, people, signed_in, make_client):
    reader = signed_in("reader")
    copy = _copy(make_client, reader)
    assert copy.get("/read").status_code == 200 and not _signed_out(copy)
    r = reader.post("/logout", data={"csrf_token": factories.csrf_of(reader.get("/read").text)})
    assert str(r.url).endswith("/login")
    assert _signed_out(copy) and _signed_out(reader)
    (row,) = _rows(session, people["reader"].id)
    assert row.end_reason == "logout" and row.ended_at is not None
    assert "sha256" not in row.token_hash and len(row.token_hash) == 64  # only the digest is stored
    assert row.token_hash not in str(reader.cookies.items())


def test_an_anonymous_cookie_never_becomes_a_signed_in_one(people, make_client):
    victim = make_client()
    victim.get("/login")
    attacker = _copy(make_client, victim)  # a planted or sniffed pre-login cookie
    assert factories.login(victim, people["reader"].email).status_code == 200
    assert not _signed_out(victim) and _signed_out(attacker)


def test_the_idle_timeout_signs_out_and_says_why(session, people, signed_in):
    reader = signed_in("reader")
    _age(session, people["reader"].id, "last_seen_at", 31 * 60)
    r = reader.get("/read")
    assert str(r.url).endswith("/login?next=/read") and "without activity" in r.text
    assert "without activity" not in reader.get("/login").text  # said once
    assert [s.end_reason for s in _rows(session, people["reader"].id)] == ["idle"]
    assert factories.login(reader, people["reader"].email).status_code == 200 and not _signed_out(reader)


def test_the_lifetime_holds_however_active_the_user_is(session, people, signed_in):
    reader = signed_in("reader")
    _age(session, people["reader"].id, "created_at", 12 * 3600 + 60)
    _age(session, people["reader"].id, "last_seen_at", 5)
    r = reader.get("/read")
    assert str(r.url).endswith("/login?next=/read") and "time limit" in r.text
    assert [s.end_reason for s in _rows(session, people["reader"].id)] == ["expired"]


def test_the_last_request_is_written_at_most_once_a_minute(session, people, signed_in):
    reader = signed_in("reader")
    _age(session, people["reader"].id, "last_seen_at", 30)
    (before,) = _rows(session, people["reader"].id)
    for _ in range(3):
        assert reader.get("/read").status_code == 200
    (after,) = _rows(session, people["reader"].id)
    assert after.last_seen_at == before.last_seen_at  # within a minute: no write
    _age(session, people["reader"].id, "last_seen_at", 90)
    assert reader.get("/read").status_code == 200
    (touched,) = _rows(session, people["reader"].id)
    assert datetime.now(UTC) - touched.last_seen_at < timedelta(seconds=30)


def test_the_clocks_come_from_the_policy(session, people):
    user = people["reader"]
    policy = web_sessions.SessionPolicy(lifetime_s=3600, idle_s=600)
    token = web_sessions.start(session, user, client="1.2.3.4", user_agent="test")
    session.commit()
    row = _rows(session, user.id)[0]
    t0 = row.created_at
    for minutes in (9, 18, 27, 36, 45, 54):  # active every 9 minutes: the idle clock never runs out
        assert web_sessions.resolve(session, token, policy, now=t0 + timedelta(minutes=minutes)).user == user
    assert web_sessions.resolve(session, token, policy, now=t0 + timedelta(minutes=61)).ended == "expired"
    other = web_sessions.start(session, user, client="1.2.3.4", user_agent="test")
    start = _rows(session, user.id)[1].created_at
    assert web_sessions.resolve(session, other, policy, now=start + timedelta(seconds=599)).user == user
    idle_at = start + timedelta(seconds=599 + 601)
    assert web_sessions.resolve(session, other, policy, now=idle_at).ended == "idle"
    assert web_sessions.resolve(session, other, policy, now=start).user is None  # ended stays ended
    assert web_sessions.resolve(session, "no-such-token", policy).user is None


def test_deactivation_and_a_new_password_end_sessions(session, people, signed_in, make_client):
    admin = signed_in("admin")
    reader = signed_in("reader")
    other_reader = signed_in("reader2")
    page = admin.get("/admin/users")
    r = admin.post(
        f"/admin/users/{people['reader'].id}/invite", data={"csrf_token": factories.csrf_of(page.text)}
    )
    path = re.search(r'value="http://testserver(/invite/[^"]+)"', r.text).group(1)
    assert not _signed_out(reader)  # a link alone changes nothing
    new_browser = make_client()
    form = new_browser.get(path)
    data = {
        "csrf_token": factories.csrf_of(form.text),
        "password": "copper lantern hill",
        "confirm": "copper lantern hill",
    }
    assert new_browser.post(path, data=data).status_code == 200
    assert _signed_out(reader) and not _signed_out(new_browser)
    assert [s.end_reason for s in _rows(session, people["reader"].id)] == ["password", None]
    token = factories.csrf_of(admin.get("/admin/users").text)
    admin.post(f"/admin/users/{people['reader2'].id}/active", data={"csrf_token": token, "active": "no"})
    assert _signed_out(other_reader)
    assert [s.end_reason for s in _rows(session, people["reader2"].id)] == ["deactivated"]


def test_an_admin_signs_someone_out_everywhere(session, people, signed_in):
    browsers = [signed_in("reader"), signed_in("reader")]
    admin = signed_in("admin")
    page = admin.get("/admin/users")
    assert "2 sessions" in page.text
    r = admin.post(
        f"/admin/users/{people['reader'].id}/sessions/end", data={"csrf_token": factories.csrf_of(page.text)}
    )
    assert r.status_code == 200 and "2 sessions" not in r.text
    assert all(_signed_out(b) for b in browsers)
    assert not _signed_out(admin, "/studies")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "end_sessions"))
    assert event.entity_id == str(people["reader"].id) and event.new == {"ended": 2}
    assert factories.login(browsers[0], people["reader"].email).status_code == 200
