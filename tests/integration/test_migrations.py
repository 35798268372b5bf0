"""Migrations that rewrite stored data, each run on a scratch database from the revision before it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from app.domain.identities import pseudonym


@contextmanager
def scratch_database(db_url: str) -> Iterator[Engine]:
    """An empty database on the test server, dropped afterwards."""
    from app.core.embedded_db import sqlalchemy_url

    name = f"cxrlab_mig_{secrets.token_hex(4)}"
    admin = create_engine(sqlalchemy_url(db_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(sqlalchemy_url(db_url)).set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_revision_0009_pseudonymises_outside_patient_ids_only(db_url):
    """Revision 0009 replaces outside sets' clear patient ids by pseudonyms and leaves generated ones."""
    from app.persistence.migrate import upgrade

    with scratch_database(db_url) as engine:
        upgrade(engine, "0008")
        with engine.begin() as conn:
            for set_id, source in ((1, "chestxray14"), (2, "phantoms")):
                conn.execute(
                    text(
                        "INSERT INTO image_sets (id, name, kind, label_schema, resolution, source) "
                        "VALUES (:id, :name, 'real', '[]', 64, :source)"
                    ),
                    {"id": set_id, "name": source, "source": source},
                )
            rows = [(1, "a", "00042"), (1, "b", "00042"), (1, "c", None), (2, "d", "phantom-0-1")]
            for set_id, source_name, patient in rows:
                conn.execute(
                    text(
                        "INSERT INTO images (image_set_id, sha256, source_name, labels, patient_id, "
                        "provenance) VALUES (:s, :sha, :n, '[]', :p, '{}')"
                    ),
                    {"s": set_id, "sha": "0" * 64, "n": source_name, "p": patient},
                )
        upgrade(engine)
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT source_name, patient_id FROM images")).all())
            assert conn.execute(text("SELECT count(study_id) FROM images")).scalar() == 0
        hashed = pseudonym("patient", "00042")
        assert stored == {"a": hashed, "b": hashed, "c": None, "d": "phantom-0-1"}


def test_revision_0010_renames_the_audit_and_evaluate_kinds_with_their_queued_jobs(db_url):
    """Revision 0010: `audit` runs become `memorisation` (their summary moves with them), `evaluate` runs
    `evaluation`, a queued job keeps its run's kind; the downgrade gives the old names back."""
    from app.persistence.migrate import alembic_config, upgrade

    summary = {"flagged": 1, "distance_threshold": 0.1}
    with scratch_database(db_url) as engine:
        upgrade(engine, "0009")
        with engine.begin() as conn:
            for kind, outputs in (("audit", {"audit": summary}), ("evaluate", {"evaluation": {"fid": 3}})):
                conn.execute(
                    text("INSERT INTO runs (kind, config, outputs) VALUES (:k, '{}', CAST(:o AS jsonb))"),
                    {"k": kind, "o": json.dumps(outputs)},
                )
                conn.execute(
                    text("INSERT INTO procrastinate_jobs (queue_name, task_name) VALUES ('gpu', :k)"),
                    {"k": kind},
                )

        def stored() -> tuple[list, list]:
            with engine.connect() as conn:
                runs = conn.execute(text("SELECT kind, outputs FROM runs ORDER BY id")).all()
                jobs = conn.execute(text("SELECT task_name FROM procrastinate_jobs ORDER BY id")).scalars()
                return [tuple(r) for r in runs], list(jobs)

        upgrade(engine)
        assert stored() == (
            [("memorisation", {"memorisation": summary}), ("evaluation", {"evaluation": {"fid": 3}})],
            ["memorisation", "evaluation"],
        )
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0009")
        assert stored() == (
            [("audit", {"audit": summary}), ("evaluate", {"evaluation": {"fid": 3}})],
            ["audit", "evaluate"],
        )


def test_the_migrations_grant_to_the_role_db_app_role_names(db_url, monkeypatch, owner_engine):
    """A deployment that renames the app's role gets that role created and granted, table by table."""
    from app.core.config import get_settings
    from app.persistence.migrate import upgrade

    role = f"cxrlab_alt_{secrets.token_hex(3)}"
    monkeypatch.setenv("DB_APP_ROLE", role)
    get_settings.cache_clear()
    try:
        with scratch_database(db_url) as engine:
            upgrade(engine)
            with engine.connect() as conn:

                def may(table: str, privilege: str) -> bool:
                    query = text("SELECT has_table_privilege(:r, :t, :p)")
                    return conn.execute(query, {"r": role, "t": table, "p": privilege}).scalar()

                assert may("web_sessions", "UPDATE") and may("study_collaborators", "INSERT")  # 0007, 0006
                assert may("readings", "INSERT") and not may("readings", "UPDATE")  # 0005
    finally:
        monkeypatch.delenv("DB_APP_ROLE")
        get_settings.cache_clear()
        with owner_engine.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
            conn.commit()
