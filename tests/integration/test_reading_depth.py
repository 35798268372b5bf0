"""The reading room deep into a study: what a case costs Postgres must not grow faster than the reader's
progress. A reader of a 300-case study pays for every case at every depth; when the current case was
found as "the first position with no reading", Postgres rescanned the answered ones for each, and at case
400 the page spent 20 ms there (issue 14).

Measured as the rows each SELECT of the case page, the image, the submit and a revision reads or discards,
from EXPLAIN ANALYZE run on the statements the app sent, with the parameters it sent them with: a count, not
a timing, so it holds on any machine. The tables are analysed first and sequential and bitmap scans are off,
as for tables too big to read whole, so the count says what the statement needs, not what the planner
prefers on a few hundred rows. Each statement is also run prepared, on a generic plan, as Postgres may plan
it once psycopg has prepared it. Counting the reader's answers and their order (the "case k of n" on every
page) may read each of them once, a range of an index; finding anything (the session, the current case,
an image, the last answer) reads a few rows at any depth.
"""

from __future__ import annotations

import re

from sqlalchemy import text

from tests import factories
from tests.database import sent_sql

CASE_ID = re.compile(r'name="case_id" value="([^"]+)"')
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
DEPTH = 120  # cases answered before the measured one
FIND = 30  # rows a statement may read to find what it looks for, at any depth (an answer locking its
# position and the two after it: 21, each row counted once by every plan node it passes)
COUNT = 2 * (DEPTH + 4) + 10  # one pass over the reader's answers and one over their order


def selects(sql: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """The SELECT statements among those sent."""
    return [(sql_, params) for sql_, params in sql if sql_.lstrip().upper().startswith("SELECT")]


def rows_touched(node: dict, under_count: bool = False) -> tuple[float, float]:
    """(rows read to find something, rows read to count something) by a plan node and those under it:
    each node's rows returned or discarded, times its loops, on the second side under an Aggregate."""
    counting = under_count or node.get("Node Type") == "Aggregate"
    own = node.get("Actual Rows", 0) + sum(
        node.get(key, 0)
        for key in ("Rows Removed by Filter", "Rows Removed by Join Filter", "Rows Removed by Index Recheck")
    )
    own *= node.get("Actual Loops", 1)
    found, counted = (0.0, own) if counting else (own, 0.0)
    for child in node.get("Plans", ()):
        f, c = rows_touched(child, counting)
        found, counted = found + f, counted + c
    return found, counted


def explained(sql: list[tuple[str, dict]], *, generic: bool) -> list[tuple[tuple[float, float], str]]:
    """(rows touched, statement) of each statement, run again under EXPLAIN ANALYZE and rolled back: with
    its values known to the planner, or (generic) as a prepared statement planned without them, as psycopg
    prepares the reading room's statements after five runs and Postgres may then keep a generic plan."""
    from app.persistence.db import get_engine

    out = []
    with get_engine().connect() as conn:
        raw = conn.connection.driver_connection
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        for k, (statement, params) in enumerate(sql):
            if generic:
                plan = explained_prepared(raw, f"depth_{k}", statement, params)
            else:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params).scalar()
            out.append((rows_touched(plan[0]["Plan"]), statement))
        conn.rollback()
    return out


def explained_prepared(raw, name: str, statement: str, params: dict) -> list:
    """EXPLAIN ANALYZE's plan of `statement` prepared as `name` ($1, $2... for its named parameters) and
    run with `params`, on a raw psycopg connection."""
    from psycopg import sql as pgsql

    names = list(dict.fromkeys(PLACEHOLDER.findall(statement)))
    numbered = PLACEHOLDER.sub(lambda m: f"${names.index(m.group(1)) + 1}", statement)
    raw.execute(f"PREPARE {name} AS {numbered}")
    values = pgsql.SQL(", ").join(pgsql.Literal(params[key]) for key in names)
    query = pgsql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {}({})").format(pgsql.Identifier(name), values)
    plan = raw.execute(query).fetchone()[0]
    raw.execute(f"DEALLOCATE {name}")
    return plan


def test_a_case_costs_no_more_than_a_pass_over_the_readers_answers(
    session, store, people, signed_in, owner_engine
):
    reader = people["reader"]
    n = DEPTH // 2 + 4  # films per set
    real = factories.phantom_set(session, store, name="real", kind="real", n=n, seed=0)
    synthetic = factories.phantom_set(session, store, name="synth", kind="synthetic", n=n, seed=1)
    study = factories.launched_study(
        session, store, readers=[reader, people["reader2"]], creator=people["researcher"],
        n_cases=DEPTH + 4, real=real, synthetic=synthetic, allow_revision=True,
    )  # fmt: skip
    session.commit()
    # The other reader's answers sit in the same study: a lookup must not wade through them either.
    factories.answer_cases(session, study.id, people["reader2"], cases=DEPTH, skill=0.5)
    factories.answer_cases(session, study.id, reader, cases=DEPTH, skill=0.5)
    with owner_engine.connect() as conn:  # statistics now, not whenever autovacuum gets to them
        conn.execute(text("ANALYZE readings, reader_cases, cases"))
        conn.commit()
    client = signed_in("reader")
    with sent_sql() as page_sql:
        page = client.get(f"/read/{study.id}/case")
    case_id = CASE_ID.search(page.text).group(1)
    assert f"Case {DEPTH + 1} of {DEPTH + 4}" in page.text  # deep into the study
    with sent_sql() as image_sql:
        assert client.get(f"/img/{case_id}").status_code == 200
    form = {"csrf_token": factories.csrf_of(page.text), "case_id": case_id, "client_token": "deep-0001"}
    with sent_sql() as submit_sql:
        r = client.post(f"/read/{study.id}/case", data=form | {"verdict": "real", "confidence": "3"})
    assert f"Case {DEPTH + 2} of {DEPTH + 4}" in r.text  # the next case (the client follows the redirect)
    # The reader takes the answer back: the revise page, then the revision (the path off the common one).
    with sent_sql() as revise_sql:
        page = client.get(f"/read/{study.id}/revise")
        assert f'value="{case_id}"' in page.text
        form |= {"csrf_token": factories.csrf_of(page.text), "client_token": "deep-0002", "revise": "1"}
        r = client.post(f"/read/{study.id}/case", data=form | {"verdict": "synthetic", "confidence": "4"})
    assert f"Case {DEPTH + 2} of {DEPTH + 4}" in r.text
    steps = (("page", page_sql), ("image", image_sql), ("submit", submit_sql), ("revise", revise_sql))
    for name, sql in steps:
        assert selects(sql), f"{name}: no SELECT heard"
        for generic in (False, True):
            for (found, counted), statement in explained(selects(sql), generic=generic):
                where = f"{name} ({'generic' if generic else 'custom'} plan)"
                assert found <= FIND, f"{where}: {found:.0f} rows to find, at most {FIND}:\n{statement}"
                assert counted <= COUNT, f"{where}: {counted:.0f} rows to count, at most {COUNT}"
