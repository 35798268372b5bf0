"""The database itself keeps readings append-only and launched studies frozen, whatever the app's code does.

The app connects as `cxrlab_app` (revision 0005), a role that owns no table; these tests run statements
as that role through the app's own engine, and as the owner where the guard must hold even for it.
"""

from __future__ import annotations

import secrets

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.domain import studies
from app.persistence.models import Study
from tests import factories

APPEND_ONLY_TRIGGERS = (
    "readings_no_truncate",
    "audit_events_no_truncate",
    "cases_frozen_at_launch",
    "reader_cases_frozen_at_launch",
    "studies_frozen_at_launch",
)


def refused(session, sql: str, match: str, **params) -> None:
    """`sql` fails with a message matching `match`; the session is usable again afterwards."""
    with pytest.raises(DBAPIError, match=match):
        session.execute(text(sql), params)
    session.rollback()


@pytest.fixture
def launched(session, store, people):
    """A launched study whose reader has answered two cases (so readings and audit events exist)."""
    study = factories.launched_study(session, store, readers=[people["reader"]], creator=people["researcher"])
    session.commit()
    factories.answer_cases(session, study.id, people["reader"], cases=2, skill=1.0)
    return study


def test_the_app_acts_as_a_role_that_owns_nothing(session):
    from app.jobs.worker import libpq_url

    assert session.scalar(text("SELECT current_user")) == "cxrlab_app"
    owns = text(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND pg_has_role(current_user, c.relowner, 'MEMBER')"
    )
    assert session.scalar(owns) == 0
    # The worker's procrastinate connections read the same URL and act as the role too.
    with psycopg.connect(libpq_url()) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("cxrlab_app",)


def test_the_app_role_reads_and_adds_to_every_table_and_rewrites_no_reading(owner_engine, db_url):
    """A revision that adds a table must grant the role its rights (revision 0005 grants none by default)."""
    rights = text(
        "SELECT tablename, "
        + ", ".join(
            f"has_table_privilege('cxrlab_app', format('%I', tablename), '{p}')"
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        )
        + " FROM pg_tables WHERE schemaname = current_schema()"
    )
    with owner_engine.connect() as conn:
        found = {t: tuple(r) for t, *r in conn.execute(rights)}
    assert {"readings", "audit_events", "cases", "procrastinate_jobs"} <= set(found)
    for table, (select, insert, *_, truncate) in found.items():
        assert select and not truncate, table
        assert insert == (table != "alembic_version"), table
    for table in ("readings", "audit_events", "alembic_version"):
        assert found[table][2:4] == (False, False), f"cxrlab_app may rewrite {table}"


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("TRUNCATE readings", "permission denied"),
        ("TRUNCATE audit_events", "permission denied"),
        ("TRUNCATE cases CASCADE", "permission denied"),
        ("ALTER TABLE readings DISABLE TRIGGER ALL", "must be owner"),
        ("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only", "must be owner"),
        ("ALTER TABLE cases DISABLE TRIGGER cases_frozen_at_launch", "must be owner"),
        ("DROP TRIGGER readings_append_only ON readings", "must be owner"),
        ("UPDATE readings SET confidence = 1", "permission denied"),
        ("DELETE FROM audit_events", "permission denied"),
        ("ALTER TABLE readings OWNER TO cxrlab_app", "must be owner"),
    ],
)
def test_the_app_role_cannot_remove_readings_or_their_guards(session, launched, sql, match):
    before = session.scalar(
        text("SELECT (SELECT count(*) FROM readings) * 1000 + count(*) FROM audit_events")
    )
    assert before > 2000
    refused(session, sql, match)
    after = session.scalar(text("SELECT (SELECT count(*) FROM readings) * 1000 + count(*) FROM audit_events"))
    assert after == before


@pytest.mark.parametrize(
    "sql", ["TRUNCATE readings", "TRUNCATE audit_events", "TRUNCATE cases, studies, readings CASCADE"]
)
def test_even_the_owner_cannot_truncate_the_append_only_tables_by_mistake(owner_engine, launched, sql):
    with owner_engine.connect() as conn:
        with pytest.raises(DBAPIError, match=r"(readings|audit_events) is append-only"):
            conn.execute(text(sql))
        conn.rollback()
        assert conn.scalar(text("SELECT count(*) FROM readings")) == 2


def test_a_launched_studys_cases_are_frozen(session, launched):
    case = session.execute(
        text("SELECT id, truth, image_id FROM cases WHERE study_id = :s ORDER BY id LIMIT 1"),
        {"s": launched.id},
    ).one()
    flipped = "real" if case.truth == "synthetic" else "synthetic"
    frozen = f"the cases of study {launched.id} are frozen"
    refused(session, "UPDATE cases SET truth = :t WHERE id = :c", frozen, t=flipped, c=case.id)
    refused(session, "UPDATE cases SET sha256 = repeat('0', 64) WHERE id = :c", frozen, c=case.id)
    refused(session, "UPDATE cases SET image_id = image_id + 1 WHERE id = :c", frozen, c=case.id)
    refused(
        session, "UPDATE cases SET is_practice = NOT is_practice WHERE study_id = :s", frozen, s=launched.id
    )
    refused(
        session,
        "DELETE FROM cases WHERE id = :c AND id NOT IN (SELECT case_id FROM readings)",
        frozen,
        c=case.id,
    )
    refused(
        session,
        "INSERT INTO cases (study_id, image_id, opaque_id, sha256, truth, is_practice) "
        "VALUES (:s, :i, 'extra-case', repeat('1', 64), 'real', false)",
        frozen,
        s=launched.id,
        i=case.image_id,
    )
    assert session.scalar(text("SELECT truth FROM cases WHERE id = :c"), {"c": case.id}) == case.truth


def test_a_launched_studys_orders_are_frozen_but_for_the_time_a_case_is_first_shown(
    session, launched, people
):
    reader = people["reader"].id
    order = "SELECT id, position, shown_at FROM reader_cases WHERE reader_id = :r ORDER BY position"
    rows = session.execute(text(order), {"r": reader}).all()
    # The reading path set shown_at of the two cases it showed, and nothing else.
    assert [r.shown_at is not None for r in rows[:4]] == [True, True, False, False]
    shown, unseen = rows[0], rows[2]
    frozen = f"the reader orders of study {launched.id} are frozen"
    refused(session, "UPDATE reader_cases SET position = position + 1000 WHERE id = :i", frozen, i=unseen.id)
    refused(
        session,
        "UPDATE reader_cases SET shown_at = now() + interval '1 day' WHERE id = :i",
        frozen,
        i=shown.id,
    )
    refused(session, "UPDATE reader_cases SET shown_at = NULL WHERE id = :i", frozen, i=shown.id)
    refused(
        session, "UPDATE reader_cases SET shown_at = now(), position = -1 WHERE id = :i", frozen, i=unseen.id
    )
    refused(
        session,
        "UPDATE reader_cases SET case_id = (SELECT max(case_id) FROM reader_cases) WHERE id = :i",
        frozen,
        i=unseen.id,
    )
    refused(session, "DELETE FROM reader_cases WHERE id = :i", frozen, i=unseen.id)
    # What current_case does when a case is first shown.
    session.execute(text("UPDATE reader_cases SET shown_at = now() WHERE id = :i"), {"i": unseen.id})
    session.commit()
    assert session.execute(text(order), {"r": reader}).all()[2].shown_at is not None


def test_a_launched_study_only_closes(session, launched, people):
    frozen = f"study {launched.id} is frozen"
    refused(session, "UPDATE studies SET status = 'draft' WHERE id = :s", frozen, s=launched.id)
    refused(session, "UPDATE studies SET seed = seed + 1 WHERE id = :s", frozen, s=launched.id)
    refused(
        session, "UPDATE studies SET frozen_at = NULL, status = 'draft' WHERE id = :s", frozen, s=launched.id
    )
    refused(session, "DELETE FROM studies WHERE id = :s", frozen, s=launched.id)
    studies.close(session, launched.id, actor_id=people["researcher"].id)
    session.commit()
    refused(session, "UPDATE studies SET status = 'launched' WHERE id = :s", frozen, s=launched.id)
    refused(session, "UPDATE studies SET status = 'draft' WHERE id = :s", frozen, s=launched.id)
    session.expire_all()
    assert session.get(Study, launched.id).status == "closed"


def test_a_drafts_cases_still_change(session, store, people):
    real = factories.phantom_set(session, store, name="real", kind="real", seed=0)
    syn = factories.phantom_set(session, store, name="synthetic", kind="synthetic", seed=1)
    design = studies.StudyDesign(
        title="Draft",
        image_set_ids=[real.id, syn.id],
        n_cases=4,
        resolution=64,
        reader_ids=[people["reader"].id],
    )
    draft = studies.create_study(session, store, design, actor_id=people["researcher"].id)
    session.commit()
    session.execute(text("UPDATE cases SET truth = 'real' WHERE study_id = :s"), {"s": draft.id})
    session.commit()
    # Editing a draft deletes its cases and draws them again.
    design.n_cases = 6
    studies.update_study(session, store, draft.id, design, actor_id=people["researcher"].id)
    session.commit()
    assert session.scalar(text("SELECT count(*) FROM cases WHERE study_id = :s"), {"s": draft.id}) == 6
    session.execute(text("DELETE FROM studies WHERE id = :s"), {"s": draft.id})
    session.commit()
    assert session.scalar(text("SELECT count(*) FROM cases")) == 0


def test_with_role_sets_the_role_once_and_leaves_other_options():
    from pydantic import ValidationError

    from app.core.config import Settings
    from app.persistence.db import with_role

    url = "postgresql+psycopg://u:p%40ss@h:5/db?sslmode=require&options=-crole%3Dother+-c+work_mem%3D4MB"
    query = make_url(with_role(url, "cxrlab_app")).query
    assert query == {"sslmode": "require", "options": "-c work_mem=4MB -crole=cxrlab_app"}
    assert make_url(with_role(with_role(url, "cxrlab_app"), "cxrlab_app")).query == query
    assert make_url(with_role("postgresql://u@h/db?options=-crole%3Dx", "")).query == {}
    assert make_url(with_role(url, "")).password == "p@ss"
    with pytest.raises(ValidationError):
        Settings(DB_APP_ROLE="cxrlab_app -c role=postgres")


def test_revision_0005_downgrades_and_upgrades_cleanly(db_url):
    from alembic import command

    from app.core.embedded_db import sqlalchemy_url
    from app.persistence.migrate import alembic_config, upgrade

    name = f"cxrlab_mig_{secrets.token_hex(4)}"
    admin = create_engine(sqlalchemy_url(db_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(sqlalchemy_url(db_url)).set(database=name))
    state = text(
        "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = ANY(:names)),"
        " has_table_privilege('cxrlab_app', 'cases', 'SELECT')"
    )
    names = {"names": list(APPEND_ONLY_TRIGGERS)}
    try:
        upgrade(engine)
        with engine.connect() as conn:
            assert tuple(conn.execute(state, names).one()) == (len(APPEND_ONLY_TRIGGERS), True)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        with engine.begin() as conn:
            assert tuple(conn.execute(state, names).one()) == (0, False)
            conn.execute(text("TRUNCATE readings, audit_events"))  # the guards are gone
        upgrade(engine)
        with engine.connect() as conn:
            assert tuple(conn.execute(state, names).one()) == (len(APPEND_ONLY_TRIGGERS), True)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
