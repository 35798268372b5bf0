"""Readings are never lost or doubled; the design freezes; the trail is append-only."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError

from app.domain import readings, studies
from app.domain.errors import Conflict, Invalid, NotFound
from app.domain.readings import Answer
from app.persistence.db import get_engine, get_sessionmaker
from app.persistence.models import AuditEvent, ImageSet, ReaderCase, Reading
from tests import factories


@pytest.fixture
def study(session, store, people):
    s = factories.launched_study(
        session, store, readers=[people["reader"], people["reader2"]], creator=people["researcher"]
    )
    session.commit()
    return s


def _current(session, study, reader) -> str:
    view = readings.current_case(session, study.id, reader.id)
    session.commit()
    return view.opaque_id


def test_repeated_submit_with_same_token_returns_the_stored_reading(session, study, people):
    reader = people["reader"]
    case = _current(session, study, reader)
    answer = Answer(case_opaque_id=case, client_token="token-0001", verdict="real", confidence=4)
    first, created = readings.submit(session, study.id, reader.id, answer)
    session.commit()
    assert created
    again, created_again = readings.submit(session, study.id, reader.id, answer)
    assert not created_again and again.id == first.id
    other_token = Answer(case_opaque_id=case, client_token="token-0002", verdict="synthetic", confidence=1)
    with pytest.raises(Conflict):
        readings.submit(session, study.id, reader.id, other_token)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Reading)) == 1


def test_two_concurrent_submits_of_one_case_give_one_reading(session, study, people):
    reader = people["reader"]

    def race(case: str, tokens: tuple[str, str]) -> list[str]:
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def submit(token: str) -> None:
            s = get_sessionmaker()()
            try:
                barrier.wait()
                reading, created = readings.submit(s, study.id, reader.id, Answer(case, token, "real", 3))
                s.commit()
                outcomes.append("stored" if created else "returned")
            except Conflict:
                s.rollback()
                outcomes.append("conflict")
            except Exception as exc:  # a deadlock or any other failure must fail the test
                s.rollback()
                outcomes.append(f"error {exc!r}")
            finally:
                s.close()

        threads = [threading.Thread(target=submit, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return sorted(outcomes)

    # A retried submit (same token) racing the original: one row, both get it back.
    assert race(_current(session, study, reader), ("same-token-1", "same-token-1")) == ["returned", "stored"]
    # Two different submits of one case (two tabs): one row, the other is told.
    assert race(_current(session, study, reader), ("tok-aaaaaaa", "tok-bbbbbbb")) == ["conflict", "stored"]
    n = session.scalar(select(func.count()).select_from(Reading).where(Reading.reader_id == reader.id))
    assert n == 2  # one per case


def test_cases_are_answered_in_order(session, study, people):
    reader = people["reader"]
    current = _current(session, study, reader)
    order = session.scalars(
        select(ReaderCase).where(ReaderCase.reader_id == reader.id).order_by(ReaderCase.position)
    ).all()
    later = order[2].opaque_id  # the id this reader will be served the third case under
    assert later != current
    with pytest.raises(Conflict):
        readings.submit(session, study.id, reader.id, Answer(later, "token-later", "real", 3))


def test_reader_cannot_answer_a_study_they_are_not_in(session, store, study, people):
    outsider = factories.user(session, "reader", "outsider@test.org")
    session.commit()
    case = _current(session, study, people["reader"])
    with pytest.raises(NotFound):
        readings.submit(session, study.id, outsider.id, Answer(case, "token-outsider", "real", 3))


def test_design_is_frozen_after_launch_and_first_reading(session, store, study, people, signed_in):
    reader = people["reader"]
    readings.submit(
        session, study.id, reader.id, Answer(_current(session, study, reader), "token-first", "real", 2)
    )
    session.commit()
    session.refresh(study)
    assert study.frozen_at is not None
    design = studies.StudyDesign(title="Changed", image_set_ids=[], n_cases=2)
    with pytest.raises(Conflict):
        studies.update_study(session, store, study.id, design, actor_id=people["researcher"].id)
    session.rollback()
    client = signed_in("researcher")
    token = factories.csrf_of(client.get(f"/studies/{study.id}").text)
    r = client.post(f"/studies/{study.id}", data={"csrf_token": token, "title": "Changed", "n_cases": "2"})
    assert r.status_code == 409 and "frozen" in r.text


def test_readings_and_audit_are_append_only_in_the_database(session, study, people):
    reader = people["reader"]
    readings.submit(
        session, study.id, reader.id, Answer(_current(session, study, reader), "token-append", "real", 2)
    )
    session.commit()
    audit = session.scalars(select(AuditEvent).where(AuditEvent.entity == "reading")).all()
    assert len(audit) == 1 and audit[0].new["verdict"] == "real" and audit[0].actor_id == reader.id
    for statement in (
        "UPDATE readings SET verdict = 'synthetic'",
        "DELETE FROM readings",
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
    ):
        with pytest.raises(DBAPIError, match="append-only|permission denied"):
            session.execute(text(statement))
        session.rollback()


def test_revision_where_allowed_is_a_new_row_referencing_the_old(session, store, people):
    study = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], allow_revision=True
    )
    session.commit()
    reader = people["reader"]
    case = _current(session, study, reader)
    first, _ = readings.submit(session, study.id, reader.id, Answer(case, "token-rev-0", "real", 2))
    second, created = readings.submit(
        session, study.id, reader.id, Answer(case, "token-rev-1", "synthetic", 5, revise=True)
    )
    session.commit()
    assert created and second.revision == 1 and second.supersedes_id == first.id
    assert session.get(Reading, first.id).verdict == "real"
    # The first answer carries the time its case was first shown, though that was written past this session.
    assert first.shown_at is not None
    assert second.shown_at is None  # a revision's duration is not measured from the first showing
    with pytest.raises(Conflict, match="already answered"):  # a stale second tab, no revise flag
        readings.submit(session, study.id, reader.id, Answer(case, "token-rev-stale", "real", 1))
    session.rollback()
    readings.submit(
        session, study.id, reader.id, Answer(_current(session, study, reader), "token-next", "real", 3)
    )
    session.commit()
    with pytest.raises(Conflict, match="most recent"):  # only the latest answered case may be revised
        readings.submit(session, study.id, reader.id, Answer(case, "token-rev-2", "real", 1, revise=True))


def test_orders_are_stored_per_reader_and_differ(session, study, people):
    def order(reader):
        return session.scalars(
            select(ReaderCase.case_id).where(ReaderCase.reader_id == reader.id).order_by(ReaderCase.position)
        ).all()

    a, b = order(people["reader"]), order(people["reader2"])
    assert sorted(a) == sorted(b) and len(a) == study.n_cases
    assert a != b  # drawn per reader (6! orders; the seed is fixed, so this is deterministic)


def test_a_closed_study_takes_no_more_answers(session, study, people, signed_in):
    reader = people["reader"]
    case = _current(session, study, reader)
    studies.close(session, study.id, actor_id=people["researcher"].id)
    session.commit()
    with pytest.raises(Conflict, match="closed"):
        readings.submit(session, study.id, reader.id, Answer(case, "token-closed", "real", 3))
    session.rollback()
    page = signed_in("reader").get(f"/read/{study.id}/case")
    assert page.status_code == 409 and "closed" in page.text


def test_giveaway_click_is_stored_only_where_asked(session, store, people):
    asking = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], ask_click=True
    )
    session.commit()
    reader = people["reader"]
    case = _current(session, asking, reader)
    with pytest.raises(Invalid, match="outside the image"):
        readings.submit(
            session, asking.id, reader.id, Answer(case, "token-click-0", "synthetic", 4, click=(1.2, 0.5))
        )
    stored, _ = readings.submit(
        session, asking.id, reader.id, Answer(case, "token-click-1", "synthetic", 4, click=(0.25, 0.75))
    )
    session.commit()
    assert (stored.click_x, stored.click_y) == (0.25, 0.75)

    plain = factories.launched_study(
        session,
        store,
        readers=[reader],
        creator=people["researcher"],
        real=session.get(ImageSet, 1),
        synthetic=session.get(ImageSet, 2),
    )
    session.commit()
    plain_case = _current(session, plain, reader)
    with pytest.raises(Invalid, match="does not ask for a click"):
        readings.submit(
            session, plain.id, reader.id, Answer(plain_case, "token-click-2", "real", 2, click=(0.5, 0.5))
        )


def _post_answer(client, study_id: int, token: str, **fields):
    """Post the current case's answer, not following the redirect; extra fields override the defaults."""
    page = client.get(f"/read/{study_id}/case")
    assert page.status_code == 200, page.text
    case = re.search(r'name="case_id" value="([^"]+)"', page.text).group(1)
    data = {"case_id": case, "client_token": token, "verdict": "real", "confidence": "3"}
    data |= {"csrf_token": factories.csrf_of(page.text), **fields}
    return client.post(f"/read/{study_id}/case", data=data, follow_redirects=False)


# Each bad form value, and the field its refusal must name.
BAD_FIELDS = [
    ({"active_ms": "abc"}, "active_ms"),
    ({"active_ms": "-5"}, "active_ms"),
    ({"active_ms": "1e999"}, "active_ms"),
    ({"active_ms": "nan"}, "active_ms"),
    ({"active_ms": "12.5"}, "active_ms"),
    ({"active_ms": str(readings.MAX_ACTIVE_MS + 1)}, "active_ms"),
    ({"click_x": "abc", "click_y": "0.5"}, "click_x"),
    ({"click_x": "nan", "click_y": "0.5"}, "click_x"),
    ({"click_x": "1e999", "click_y": "0.5"}, "click_x"),
    ({"click_x": "-0.1", "click_y": "0.5"}, "click_x"),
    ({"click_x": "0.5", "click_y": "1.5"}, "click_y"),
    ({"click_x": "0.5", "click_y": "inf"}, "click_y"),
    ({"click_x": "0.5"}, "click_y"),  # half a click
    ({"click_x": "0.5", "click_y": "0.5", "active_ms": "abc"}, "active_ms"),
]


def test_a_bad_click_or_active_time_is_refused_and_blank_ones_are_allowed(session, store, people, signed_in):
    study = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], ask_click=True
    )
    session.commit()
    client = signed_in("reader")
    for fields, named in BAD_FIELDS:
        r = _post_answer(client, study.id, "token-bad-field", **fields)
        assert r.status_code == 422 and named in r.text, (fields, r.status_code, r.text[-400:])
        assert session.scalar(select(func.count()).select_from(Reading)) == 0, fields
    r = _post_answer(client, study.id, "token-blank-1", click_x="", click_y=" ", active_ms="")
    assert r.status_code == 303, r.text
    r = _post_answer(client, study.id, "token-good-1", click_x="0.25", click_y="1", active_ms="1500")
    assert r.status_code == 303, r.text
    stored = {
        r.client_token: (r.click_x, r.click_y, r.client_active_ms) for r in session.scalars(select(Reading))
    }
    assert stored == {"token-blank-1": (None, None, None), "token-good-1": (0.25, 1.0, 1500)}


def test_an_answer_waits_for_the_disk_and_a_shown_time_alone_need_not(study, signed_in):
    """A case page's shown time commits without waiting for the disk, for its transaction alone
    (routes.readings._next); an answer commits in one transaction that waits, as every answer must, with
    the next case's shown time in it (readings.submit_and_advance)."""
    client = signed_in("reader")
    engine, sent = get_engine(), []

    def statement(conn, cursor, sql, params, context, executemany) -> None:
        sent.append("-".join(sql.split()[:2]).upper())
        if "synchronous_commit" in sql:
            # For this transaction only (set_config's third argument): a plain SET stays on the connection.
            assert "set_config('synchronous_commit', 'off', true)" in sql, sql
            sent.append("no-wait")

    def commit(conn) -> None:
        sent.append("COMMIT")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        page = client.get(f"/read/{study.id}/case")  # the first view of the first case
        shown, sent[:] = " ".join(sent), []
        case_id = re.search(r'name="case_id" value="([^"]+)"', page.text).group(1)
        form = {"csrf_token": factories.csrf_of(page.text), "case_id": case_id, "client_token": "disk-0001"}
        form |= {"verdict": "real", "confidence": "3"}
        r = client.post(f"/read/{study.id}/case", data=form, headers={"HX-Request": "true"})
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert shown.count("COMMIT") == 1 and "UPDATE-READER_CASES no-wait" in shown
    assert r.status_code == 200 and case_id not in r.text  # the next case
    answer = " ".join(sent)
    assert answer.count("COMMIT") == 1 and answer.endswith("COMMIT")
    assert "INSERT-INTO" in answer and "UPDATE-READER_CASES" in answer and "no-wait" not in answer


def test_a_case_is_timed_from_its_first_showing_and_a_reload_writes_nothing(
    session, study, people, signed_in
):
    """The shown time is set once, by the first page view; a reload neither moves it nor locks the row (a
    row lock is a write: it gave every reload a transaction whose commit waited for the disk)."""
    client = signed_in("reader")

    def row() -> tuple:
        session.rollback()  # a fresh snapshot
        sql = (
            "SELECT shown_at, xmin::text, xmax::text FROM reader_cases"
            " WHERE study_id = :s AND reader_id = :r AND position = 0"
        )
        return tuple(session.execute(text(sql), {"s": study.id, "r": people["reader"].id}).one())

    assert row()[0] is None
    first = client.get(f"/read/{study.id}/case")
    assert first.status_code == 200
    shown = row()
    assert shown[0] is not None
    again = client.get(f"/read/{study.id}/case")
    assert again.status_code == 200 and _case_id(again.text) == _case_id(first.text)
    assert row() == shown  # same time, same row version, no locker recorded in xmax


def _case_id(html: str) -> str:
    return re.search(r'name="case_id" value="([^"]+)"', html).group(1)


def test_each_answer_shows_the_next_case_and_the_last_completes_the_study(session, study, people, signed_in):
    """An htmx answer comes back with the next case, its shown time set in the answer's transaction
    (readings.submit_and_advance); the last one leads to the end page and records that the reader finished."""
    client, reader = signed_in("reader"), people["reader"]
    params = {"s": study.id, "r": reader.id}

    def shown_times() -> list:
        session.rollback()  # a fresh snapshot
        sql = "SELECT shown_at FROM reader_cases WHERE study_id = :s AND reader_id = :r ORDER BY position"
        return list(session.scalars(text(sql), params))

    def completed_at():
        sql = "SELECT completed_at FROM study_readers WHERE study_id = :s AND reader_id = :r"
        return session.scalar(text(sql), params)

    page, total = client.get(f"/read/{study.id}/case"), len(shown_times())
    csrf = factories.csrf_of(page.text)  # the region that comes back carries none: the page's serves on
    for k in range(total):
        assert completed_at() is None
        data = {"csrf_token": csrf, "case_id": _case_id(page.text)}
        data |= {"client_token": f"walk-{k:04d}", "verdict": "real", "confidence": "3"}
        r = client.post(f"/read/{study.id}/case", data=data, headers={"HX-Request": "true"})
        assert r.status_code == 200, r.text
        if k == total - 1:
            assert r.headers["HX-Redirect"] == f"/read/{study.id}/done"
            break
        assert f"Case {k + 2} of {total}" in r.text and _case_id(r.text) != data["case_id"]
        times = shown_times()
        assert all(times[: k + 2]) and not any(times[k + 2 :])  # shown: the answered ones and the next
        again = client.get(f"/read/{study.id}/case")  # a reload serves it again and keeps its time
        assert _case_id(again.text) == _case_id(r.text) and shown_times() == times
        page = r
    assert completed_at() is not None


def test_the_last_answer_completes_the_study_though_the_one_before_commits_mid_answer(
    session, study, people
):
    """The answer before the last (another tab) commits between the last answer's progress count and its
    lock on the position: the count is one short, and the locked positions, none left, tell that the
    reader finished (readings._store)."""
    reader = people["reader"]
    positions = select(func.count()).where(ReaderCase.study_id == study.id, ReaderCase.reader_id == reader.id)
    for k in range(session.scalar(positions) - 2):
        answer = Answer(_current(session, study, reader), f"token-{k:04d}", "real", 3)
        readings.submit(session, study.id, reader.id, answer)
        session.commit()
    # Two positions left: the one before the last, answered from one tab, and the last, answered from
    # another (which knew it from the image the page fetches ahead).
    view = readings.current_case(session, study.id, reader.id)
    session.commit()
    before_last, last = view.opaque_id, view.next_opaque_id
    armed = [True]

    def the_tab_before_commits(conn, cursor, sql, *_args) -> None:
        if armed[0] and "FOR UPDATE OF reader_cases" in sql:
            armed[0] = False
            with get_sessionmaker()() as other:
                readings.submit(other, study.id, reader.id, Answer(before_last, "tok-before-last", "real", 3))
                other.commit()

    event.listen(get_engine(), "before_cursor_execute", the_tab_before_commits)
    try:
        with get_sessionmaker()() as s:
            answer = Answer(last, "tok-the-last", "real", 3)
            stored = readings.submit_and_advance(s, study.id, reader.id, answer)
            s.commit()
    finally:
        event.remove(get_engine(), "before_cursor_execute", the_tab_before_commits)
    assert not armed[0] and stored.created and stored.advanced and stored.next_case is None
    sql = "SELECT completed_at FROM study_readers WHERE study_id = :s AND reader_id = :r"
    assert session.scalar(text(sql), {"s": study.id, "r": reader.id}) is not None


def test_a_practice_answer_shows_its_truth_before_the_next_case_is_shown(session, store, people, signed_in):
    """The feedback comes first: the next case's shown time is set when the reader moves on to it, not with
    the practice answer (readings.submit_and_advance)."""
    reader = people["reader"]
    study = factories.launched_study(
        session, store, readers=[reader], creator=people["researcher"], n_cases=4, practice=1
    )
    session.commit()
    client = signed_in("reader")
    page = client.get(f"/read/{study.id}/case")
    data = {"csrf_token": factories.csrf_of(page.text), "case_id": _case_id(page.text)}
    data |= {"client_token": "practice-0001", "verdict": "real", "confidence": "3"}
    r = client.post(f"/read/{study.id}/case", data=data, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "This practice image was" in r.text
    sql = "SELECT shown_at FROM reader_cases WHERE study_id = :s AND reader_id = :r ORDER BY position"
    session.rollback()  # a fresh snapshot
    shown = list(session.scalars(text(sql), {"s": study.id, "r": reader.id}))
    assert shown[0] is not None and not any(shown[1:])
    assert _case_id(client.get(f"/read/{study.id}/case").text)  # moving on shows the next case
    session.rollback()
    assert list(session.scalars(text(sql), {"s": study.id, "r": reader.id}))[1] is not None
