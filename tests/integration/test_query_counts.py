"""What the reading room's hot path costs the database: a test fails if the case page, the image or the
submit (which answers with the next case) grows past a stated number of SQL statements.

Counted as every statement the app's engine sends (BEGIN and COMMIT are not statements here). The limits
are today's counts; raising one needs a reason (issue 14: 6, 2 and 19 before they were cut). The submit
(with HX-Request, as the reading room sends it) brings the next case in its own transaction: the answer,
then the next case's shown time, one commit (9 statements in two transactions before).

None of the three rolls a transaction back: a ROLLBACK makes psycopg drop every statement it prepared on
the connection, and the reading room's statements were then parsed and planned again on every case (about
15 % of a case's time, bench_paired.py). The reader's other pages (practice feedback, revising, the
instructions, the end page) still end with one; they come a few times a study.

Nor does a crowd of requests open connections: once the pool has filled, a burst wider than it is served
on the connections it keeps. And an export holds no connection while it downloads.
"""

from __future__ import annotations

import inspect
import re
from concurrent.futures import ThreadPoolExecutor

import anyio
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.core.config import get_settings
from app.domain import exports
from app.domain.studies import get_study
from app.persistence.db import get_engine, get_sessionmaker
from app.web.routes import results as results_routes
from app.web.routes.results import export_csv
from tests import factories
from tests.database import rollbacks, sent_sql

CASE_ID = re.compile(r'name="case_id" value="([^"]+)"')
# The next case's shown time commits without waiting for the disk in its own UPDATE's round trip (a SET
# LOCAL of its own was the submit's tenth statement for a day; repositories.readings.mark_shown).
LIMITS = {"page": 3, "image": 2, "submit": 6}


def test_page_image_and_submit_stay_within_their_query_budget(session, store, people, signed_in):
    reader = people["reader"]
    study = factories.launched_study(
        session, store, readers=[reader], creator=people["researcher"], n_cases=6,
        ask_findings=True, ask_free_text=True, ask_click=True,
    )  # fmt: skip
    session.commit()
    client = signed_in("reader")
    client.get(f"/read/{study.id}/case")  # the first view also records when the case was shown
    counts: dict[str, list[int]] = {name: [] for name in LIMITS}
    with rollbacks() as rolled_back:
        read_three(client, study, counts)
    for name, limit in LIMITS.items():
        assert min(counts[name]) > 0 and max(counts[name]) <= limit, f"{name}: {counts[name]}, budget {limit}"
    assert not rolled_back, f"{len(rolled_back)} transactions rolled back reading three cases"


def read_three(client, study, counts: dict[str, list[int]]) -> None:
    """Read three cases, appending the statements each request sent to `counts`."""
    for i in range(3):
        with sent_sql() as page_sql:
            page = client.get(f"/read/{study.id}/case")
        case_id = CASE_ID.search(page.text).group(1)
        with sent_sql() as image_sql:
            assert client.get(f"/img/{case_id}").status_code == 200
        form = {
            "csrf_token": factories.csrf_of(page.text),
            "case_id": case_id,
            "client_token": f"budget-{i:04d}",
        }
        form |= {"verdict": "real", "confidence": "3", "findings": study.findings[:1], "click_x": "0.5"}
        form |= {"click_y": "0.5", "free_text": "ok", "active_ms": "900"}
        with sent_sql() as submit_sql:
            r = client.post(f"/read/{study.id}/case", data=form, headers={"HX-Request": "true"})
        assert r.status_code == 200 and CASE_ID.search(r.text).group(1) != case_id  # the next case
        for name, sql in (("page", page_sql), ("image", image_sql), ("submit", submit_sql)):
            counts[name].append(len(sql))


def test_a_burst_wider_than_the_pool_opens_no_connection_once_it_has_filled(session, store, people, _app):
    reader = people["reader"]
    study = factories.launched_study(
        session, store, readers=[reader], creator=people["researcher"], n_cases=4
    )
    session.commit()
    width = 2 * get_settings().db_pool_size  # requests in flight at once, twice the connections kept
    opened: list[object] = []

    def on_connect(*_args: object) -> None:
        opened.append(None)

    def burst(client: TestClient) -> None:
        with ThreadPoolExecutor(width) as pool:
            codes = pool.map(lambda _: client.get(f"/read/{study.id}/case").status_code, range(3 * width))
            assert set(codes) == {200}

    with TestClient(_app) as client:  # as served: the lifespan sizes the worker threads to the pool
        assert factories.login(client, reader.email).status_code == 200
        burst(client)
        held = [get_engine().connect() for _ in range(get_settings().db_pool_size)]  # the pool, filled
        for conn in held:
            conn.close()
        event.listen(get_engine(), "connect", on_connect)
        try:
            burst(client)
            burst(client)
        finally:
            event.remove(get_engine(), "connect", on_connect)
    # Before, a pool of 10 behind anyio's 40 worker threads opened and closed one for each request past 10.
    assert not opened, f"{len(opened)} connections opened after the pool had filled"


def test_an_export_holds_no_connection_while_it_downloads(session, store, people, monkeypatch):
    study = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], n_cases=6
    )
    factories.answer_cases(session, study.id, people["reader"], cases=6, skill=0.5)
    expected = "".join(exports.export_lines(session, get_study(session, study.id))).encode()
    session.commit()
    # Small pieces, and a spool that spills to its file: the download takes many hops, each one a chance to
    # hold a connection. (Written so that it also runs against the route that streamed from the cursor, and
    # fails there on the connection held, not on a name: a str body, a sync route, no spool.)
    monkeypatch.setattr(results_routes, "EXPORT_CHUNK_BYTES", 100, raising=False)
    monkeypatch.setattr(results_routes, "EXPORT_IN_MEMORY_BYTES", 500, raising=False)
    spools = []
    spooled = getattr(results_routes, "_spooled", None)
    monkeypatch.setattr(
        results_routes, "_spooled", lambda lines: spools.append(spooled(lines)) or spools[-1], raising=False
    )
    pool = get_engine().pool
    with get_sessionmaker()() as db:  # as get_db gives it, and closes it only once the download has ended

        async def call():
            response = export_csv(db, people["researcher"], study.id)
            return await response if inspect.isawaitable(response) else response

        response = anyio.run(call)
        assert not db.in_transaction()
        idle = pool.checkedout()

        async def download() -> tuple[bytes, set[int]]:
            body, held = b"", set()
            async for piece in response.body_iterator:
                body += piece.encode() if isinstance(piece, str) else piece
                held.add(pool.checkedout() - idle)
            return body, held

        body, held = anyio.run(download)
    # Streamed from the cursor, the download held a connection (and its snapshot) for as long as the
    # client took; a few stalled clients could hold the pool.
    assert held == {0}, "a connection was held while the export downloaded"
    assert body == expected and len(expected) > 5 * 100
    [(spool, _)] = spools
    assert spool._rolled and spool.closed  # it spilled to its file, and the download closed it
    assert response.headers["content-length"] == str(len(expected))
