"""append-only for the app's role: truncate guards, launch freezes, and a role that owns nothing

Three holes closed:

1. TRUNCATE skipped the row triggers of 0001: readings and audit_events now refuse TRUNCATE too (a BEFORE
   TRUNCATE trigger also fires when a TRUNCATE ... CASCADE of another table reaches them).
2. A table's owner can ALTER it, DISABLE TRIGGER or TRUNCATE it, and the app connected as the owner. This
   revision creates the app's role (DB_APP_ROLE, `cxrlab_app` by default; read when the revision runs), a
   NOLOGIN role that owns nothing: SELECT and INSERT on readings and
   audit_events, SELECT, INSERT, UPDATE, DELETE on every other table (procrastinate's included, its
   functions need them), USAGE on the sequences, SELECT only on alembic_version. The app starts every
   connection as that role (DB_APP_ROLE, libpq's `-crole=` option; app/persistence/db.py); migrations
   connect as the owner (app/persistence/migrate.py). The migrating user joins the role so that it may
   act as it. A later revision that adds a table grants the role what it needs there: nothing is granted
   by default, and every test runs as the role, so a missing grant fails loudly rather than a new
   append-only table quietly getting UPDATE.
   Limit: a session whose login user is the owner can leave the role (SET ROLE NONE). This protects
   against the app's own mistakes and against a request path that can only run the app's queries; a
   deployment that wants more gives the app a login of its own (DATABASE_URL logs in as cxrlab_app, or a
   member of it, with a password; MIGRATION_DATABASE_URL logs in as the owner).
3. A launched study's results could still change under the readings: the truth, image or rendered file
   of a case, or a reader's order. Triggers now freeze, once a study is launched or closed: its cases
   (no INSERT, UPDATE or DELETE), its reader orders (no DELETE; the one UPDATE is setting shown_at once,
   when the case is first shown, app.domain.readings.current_case; new readers' orders may still be
   inserted, app.domain.studies.add_reader), and the study row itself (its one change is launched to
   closed, and it cannot be deleted, which would otherwise also reopen its cases to a cascade). Drafts
   stay editable: update_study deletes and redraws a draft's cases. The case guard locks the study row
   (FOR KEY SHARE, as the foreign key check does), so a change cannot slip in while a launch that holds
   the study FOR UPDATE is reading the cases.

The database's owner can still drop or disable any of these triggers: they guard against the app's role,
which cannot, and against mistakes of the owner's own scripts. The test suite's cleanup disables the
truncate guards for its own transaction as the owner (tests/conftest.py).

The downgrade drops the triggers and revokes the role's privileges in this database, but leaves the role:
roles belong to the whole server, where other databases (or a deployment's login that is a member of it)
may still use it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 10:00:00
"""

from alembic import op

from app.persistence.migrate import app_role

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

APP_ROLE = app_role()  # DB_APP_ROLE, read when the revision is loaded
APPEND_ONLY = ("readings", "audit_events")
FROZEN = "USING ERRCODE = 'insufficient_privilege'"

FUNCTIONS = {
    "refuse_frozen_case": f"""
        DECLARE
            study_status text;
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                SELECT status INTO study_status FROM studies WHERE id = OLD.study_id FOR KEY SHARE;
                IF study_status <> 'draft' THEN
                    RAISE EXCEPTION 'the cases of study % are frozen: it was launched', OLD.study_id {FROZEN};
                END IF;
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            SELECT status INTO study_status FROM studies WHERE id = NEW.study_id FOR KEY SHARE;
            IF study_status <> 'draft' THEN
                RAISE EXCEPTION 'the cases of study % are frozen: it was launched', NEW.study_id {FROZEN};
            END IF;
            RETURN NEW;
        END""",
    # Orders exist only once their study is launched, and a launched study never returns to draft, so
    # this guard needs no lock (the reading path sets shown_at under its own locks).
    "refuse_frozen_order": f"""
        BEGIN
            IF (SELECT status FROM studies WHERE id = OLD.study_id) <> 'draft' THEN
                IF TG_OP = 'UPDATE' AND OLD.shown_at IS NULL
                   AND to_jsonb(NEW) - 'shown_at' = to_jsonb(OLD) - 'shown_at' THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'the reader orders of study % are frozen: it was launched', OLD.study_id
                    {FROZEN};
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END""",
    "refuse_frozen_study": f"""
        BEGIN
            IF OLD.status = 'draft' THEN
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END IF;
            IF TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'status' = to_jsonb(OLD) - 'status'
               AND (NEW.status = OLD.status OR (OLD.status = 'launched' AND NEW.status = 'closed')) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'study % is frozen: it was launched (it can only be closed)', OLD.id {FROZEN};
        END""",
}

# (trigger, table, when it fires, function)
TRIGGERS = [
    ("cases_frozen_at_launch", "cases", "BEFORE INSERT OR UPDATE OR DELETE", "refuse_frozen_case"),
    ("reader_cases_frozen_at_launch", "reader_cases", "BEFORE UPDATE OR DELETE", "refuse_frozen_order"),
    ("studies_frozen_at_launch", "studies", "BEFORE UPDATE OR DELETE", "refuse_frozen_study"),
    # refuse_change() (revision 0001) raises '<table> is append-only', whatever the operation.
    *((f"{t}_no_truncate", t, "BEFORE TRUNCATE", "refuse_change") for t in APPEND_ONLY),
]


def _schema() -> str:
    """The current schema, quoted (the tables live there, wherever the URL's search_path puts them)."""
    bind = op.get_bind()
    return bind.dialect.identifier_preparer.quote(bind.exec_driver_sql("SELECT current_schema()").scalar())


def upgrade() -> None:
    for name, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}\n$$")
    for name, table, when, function in TRIGGERS:
        level = "STATEMENT" if when.endswith("TRUNCATE") else "ROW"
        op.execute(f"CREATE TRIGGER {name} {when} ON {table} FOR EACH {level} EXECUTE FUNCTION {function}()")
    # Roles belong to the server, so another database of it (another install, a parallel test run) may
    # have made this one already, possibly at this very moment.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END $$;
        """
    )
    # The owner acts as the role when the app logs in as the owner (the default, and the embedded server).
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
                GRANT {APP_ROLE} TO CURRENT_USER;
            END IF;
        END $$;
        """
    )
    schema = _schema()
    op.execute(f"GRANT USAGE ON SCHEMA {schema} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {APP_ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE ON {', '.join(APPEND_ONLY)} FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE}")


def downgrade() -> None:
    schema = _schema()
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {APP_ROLE}")
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
