"""Racing submits of one case, on separate connections: a retry gets the stored reading, never a refusal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text

from app.domain import readings
from app.domain.errors import Conflict
from app.domain.readings import Answer
from app.persistence.db import get_sessionmaker
from app.persistence.models import Reading
from app.persistence.repositories import studies as study_repo
from tests import factories

PAIRS = 20


@pytest.fixture
def study(session, store, people):
    s = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], n_cases=PAIRS + 2
    )
    session.commit()
    return s


def _current(session, study, reader) -> str:
    view = readings.current_case(session, study.id, reader.id)
    session.commit()
    return view.opaque_id


def _submit_on_own_connection(
    study_id: int, reader_id: int, answer: Answer, before: Callable[[], object], *, advance: bool = False
):
    """Submit and commit in a new session; returns ("stored"|"returned", reading id), ("conflict", None)
    or ("error ...", None). `before` runs first (a barrier's wait), so that calls can be made to race.
    `advance`: as the reading room's htmx answer, which also puts the next case in front of the reader."""
    s = get_sessionmaker()()
    try:
        before()
        if advance:
            stored = readings.submit_and_advance(s, study_id, reader_id, answer)
            reading, created = stored.reading, stored.created
        else:
            reading, created = readings.submit(s, study_id, reader_id, answer)
        s.commit()
        return ("stored" if created else "returned", reading.id)
    except Conflict:
        s.rollback()
        return ("conflict", None)
    except Exception as exc:  # a deadlock or any other failure must fail the test, not hang it
        s.rollback()
        return (f"error {exc!r}", None)
    finally:
        s.close()


def _race(
    study_id: int, reader_id: int, answers: tuple[Answer, Answer], *, advance: bool = False
) -> list[tuple[str, int | None]]:
    """Both answers submitted at once from two threads; their outcomes, sorted."""
    barrier = threading.Barrier(2)
    outcomes: list[tuple[str, int | None]] = []

    def run(answer: Answer) -> None:
        outcome = _submit_on_own_connection(
            study_id, reader_id, answer, lambda: barrier.wait(10), advance=advance
        )
        outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(a,)) for a in answers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(outcomes, key=lambda o: o[0])


def _rows(session, reader_id: int, **where) -> int:
    filters = [getattr(Reading, k) == v for k, v in where.items()]
    return session.scalar(select(func.count()).where(Reading.reader_id == reader_id, *filters)) or 0


@pytest.mark.parametrize("advance", [False, True], ids=["submit", "submit_and_advance"])
def test_same_token_pairs_sent_at_once_each_return_the_one_stored_reading(session, study, people, advance):
    reader = people["reader"]
    for i in range(PAIRS):
        case = _current(session, study, reader)
        answer = Answer(case, f"pair-token-{i:03d}", "real", 3)
        outcomes = _race(study.id, reader.id, (answer, answer), advance=advance)
        assert [o[0] for o in outcomes] == ["returned", "stored"], f"pair {i}: {outcomes}"
        assert outcomes[0][1] == outcomes[1][1], f"pair {i}: two different readings {outcomes}"
        assert _rows(session, reader.id, client_token=answer.client_token) == 1
    # Two tabs (different tokens) still clash: one stored, the other refused.
    case = _current(session, study, reader)
    outcomes = _race(
        study.id,
        reader.id,
        (Answer(case, "tab-one-0001", "real", 2), Answer(case, "tab-two-0001", "synthetic", 5)),
        advance=advance,
    )
    assert [o[0] for o in outcomes] == ["conflict", "stored"], outcomes
    assert _rows(session, reader.id) == PAIRS + 1  # one per case


def _wait_for_a_blocked_lock(owner_engine, timeout_s: float = 60.0) -> None:
    """Until some backend of this database waits for a lock (seen as the owner: the app's role may not
    read other sessions' wait events)."""
    deadline = time.monotonic() + timeout_s
    # A row lock's waiter waits on the holder's transaction id, a lock with no database in pg_locks.
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while time.monotonic() < deadline:
        with owner_engine.connect() as conn:
            waiting = conn.scalar(query)
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the second submit never waited for the study lock")


@pytest.mark.parametrize(
    ("second_token", "expected"), [("twin-token-01", "returned"), ("other-token-1", "conflict")]
)
def test_a_twin_committing_between_the_token_lookup_and_the_checks(
    session, owner_engine, study, people, second_token, expected
):
    """The interleaving behind the flaky pairs, made certain: the late submit looks its token up before the
    twin commits and reaches the "already answered" check after."""
    reader = people["reader"]
    case = _current(session, study, reader)
    first = get_sessionmaker()()
    try:
        # The first submit's own session holds the study exclusively, so the second, having looked its token
        # up and found nothing, waits at its share lock on the study until the first has committed.
        study_repo.get(first, study.id, lock=True)
        result: list[tuple[str, int | None]] = []
        late = threading.Thread(
            target=lambda: result.append(
                _submit_on_own_connection(
                    study.id, reader.id, Answer(case, second_token, "synthetic", 1), lambda: None
                )
            )
        )
        late.start()
        _wait_for_a_blocked_lock(owner_engine)
        stored, created = readings.submit(
            first, study.id, reader.id, Answer(case, "twin-token-01", "real", 4)
        )
        first.commit()
        late.join(30)
    finally:
        first.close()
    assert created
    assert result == [(expected, stored.id if expected == "returned" else None)]
    assert _rows(session, reader.id) == 1


def _post_at_once(url: str, clients: list, forms: list[dict]) -> list[int]:
    """Each client posts its form, all at once from their own threads; the statuses, sorted."""
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def post(client, form: dict) -> None:
        barrier.wait(10)
        statuses.append(client.post(url, data=form, follow_redirects=False).status_code)

    threads = [threading.Thread(target=post, args=(c, f)) for c, f in zip(clients, forms, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(statuses)


def test_same_token_posts_at_once_through_http_both_succeed(session, study, people, signed_in):
    reader = people["reader"]
    clients = [signed_in("reader"), signed_in("reader")]  # a TestClient is not shared between threads
    for i in range(5):
        case = _current(session, study, reader)
        forms = []
        for client in clients:
            page = client.get(f"/read/{study.id}/case")
            assert page.status_code == 200, page.text
            forms.append(
                {
                    "case_id": case,
                    "client_token": f"http-token-{i:03d}",
                    "verdict": "real",
                    "confidence": "3",
                    "active_ms": "1200",
                    "csrf_token": factories.csrf_of(page.text),
                }
            )
        statuses = _post_at_once(f"/read/{study.id}/case", clients, forms)
        # Both told "stored" (a redirect to the next case); a refusal re-renders the case with a notice.
        assert statuses == [303, 303], f"pair {i}: {statuses}"
        assert _rows(session, reader.id, client_token=f"http-token-{i:03d}") == 1
