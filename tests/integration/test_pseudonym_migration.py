"""Revision 0009 replaces the clear patient ids of outside sets by pseudonyms and leaves generated ones."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.domain.identities import pseudonym


def test_revision_0009_pseudonymises_outside_patient_ids_only(db_url):
    from app.core.embedded_db import sqlalchemy_url
    from app.persistence.migrate import upgrade

    name = f"cxrlab_mig_{secrets.token_hex(4)}"
    admin = create_engine(sqlalchemy_url(db_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(sqlalchemy_url(db_url)).set(database=name))
    try:
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
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
