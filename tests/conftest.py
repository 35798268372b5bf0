"""Shared fixtures: a real Postgres database (TEST_DATABASE_URL's server, or the embedded one), migrated once.

Each test that asks for `db_url` gets an emptied database; the app, the CLI and any server subprocess
all see the same DATABASE_URL and STORE_DIR through the environment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.database import empty_database
from tests.waiting import cpu_seconds

TEST_SECRET = "test-secret-key-" + "x" * 32

# One OpenMP thread per test process when pytest-xdist runs several, as scripts/test.sh sets, unless the
# caller chose: with a thread per core, each process's torch and BLAS wanted both cores and waited at
# their barriers while the other process ran (the quick run's torch tests took three times as long).
# Set before anything imports torch; worker and server subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests a quick run leaves out by what they start: job workers, and Chromium by folder."""
    for item in items:
        if "workers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.worker)
        if "browser" in item.path.parts:
            item.add_marker(pytest.mark.browser)


def _reset_caches() -> None:
    from app.core.config import get_settings
    from app.persistence.db import get_engine, get_sessionmaker

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    for fn in (get_settings, get_engine, get_sessionmaker):
        fn.cache_clear()


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STORE_DIR for the whole run."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def _database(store_dir: Path) -> Iterator[str]:
    """A fresh database for this run, migrated to head; dropped at the end."""
    from app.core.embedded_db import embedded_url, sqlalchemy_url, stop_embedded

    server_url = os.environ.get("TEST_DATABASE_URL")
    # The embedded server runs as its own system user, so its data may not live under pytest's
    # basetemp: a second pytest session resets that folder to mode 0700 and the server would lose it.
    pgdata = None if server_url else Path(tempfile.mkdtemp(prefix="cxrlab-test-pg-"))
    admin_url = sqlalchemy_url(server_url) if server_url else embedded_url(pgdata)
    name = f"cxrlab_test_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    os.environ.update(
        {
            "DATABASE_URL": url,
            "STORE_DIR": str(store_dir),
            "CXRLAB_ENV": "test",
            "SECRET_KEY": TEST_SECRET,
            # Fast heartbeats, so job tests see progress and stalls in seconds rather than minutes.
            "RUN_HEARTBEAT_S": "0.5",
            "RUN_STALL_AFTER_S": "4",
        }
    )
    _reset_caches()
    from app.persistence.db import get_engine
    from app.persistence.migrate import upgrade

    upgrade(get_engine())
    yield url
    _reset_caches()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
    if pgdata is not None:
        stop_embedded()
        shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="session")
def owner_engine(_database: str) -> Iterator[Engine]:
    """The test database as the schema's owner (the app's own engine acts as its role, which owns nothing)."""
    from app.core.embedded_db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(_database))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _emptying_sql(owner_engine: Engine) -> str:
    """The statements that empty every table but Alembic's and restart every sequence, for `db_url`."""
    with owner_engine.connect() as conn:
        superuser = conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
        # From the catalogue, not the models: the queue's tables, and any table a new revision adds, too.
        tables = conn.scalars(
            text(
                "SELECT format('%I', tablename) FROM pg_tables"
                " WHERE schemaname = current_schema() AND tablename <> 'alembic_version' ORDER BY 1"
            )
        ).all()
        sequences = conn.scalars(
            text("SELECT format('%I', sequencename) FROM pg_sequences WHERE schemaname = current_schema()")
        ).all()
    if superuser:
        # DELETE of a test's few rows takes a millisecond or two; TRUNCATE took about 0.1 s a test (new
        # files for every table). As a replica, for this transaction only, the owner fires no ordinary
        # trigger (the append-only guards, the queue's notifications, the foreign keys' checks), so no
        # other session ever sees a guard off, and the order of the tables does not matter. setval does
        # what TRUNCATE's RESTART IDENTITY did. Every table is locked first, as TRUNCATE locks them, so a
        # server or worker still writing cannot slip a row between two of the DELETEs.
        statements = [
            "SET LOCAL session_replication_role = replica",
            f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE",
            *(f"DELETE FROM {t}" for t in tables),
            *(f"SELECT setval('{s}', 1, false)" for s in sequences),
        ]
    else:
        # An owner that may not act as a replica: TRUNCATE past the append-only guards, which it lifts
        # and restores inside the same transaction.
        guards = [("readings", "readings_no_truncate"), ("audit_events", "audit_events_no_truncate")]
        statements = [
            *(f"ALTER TABLE {t} DISABLE TRIGGER {g}" for t, g in guards),
            f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE",
            *(f"ALTER TABLE {t} ENABLE TRIGGER {g}" for t, g in guards),
        ]
    return "; ".join(statements)


@pytest.fixture
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash the tests' passwords with argon2id at its cheapest cost (the production cost is ~0.15 s a hash
    on 2 cores, and most database tests make 4 users and sign some in). A hash carries its own cost, so
    the app, its servers and workers verify these quickly while still running argon2id;
    tests/unit/test_password_hashing.py checks the production parameters, out of this fixture's reach."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "app.domain.security._hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def db_url(
    _database: str, owner_engine: Engine, _emptying_sql: str, _cheap_password_hashing: None, store_dir: Path
) -> str:
    """The test database, emptied before the test, with no runs' folders or models left in the store."""
    empty_database(owner_engine, _emptying_sql)
    # Run and set ids restart at 1: an earlier run 1's files or set 1's cached features must not show.
    for folder in ("runs", "models", "feature_cache"):
        shutil.rmtree(store_dir / folder, ignore_errors=True)
    return _database


@pytest.fixture
def session(db_url: str):
    """A session on the test database; the test commits what it wants others to see."""
    from app.persistence.db import get_sessionmaker

    s = get_sessionmaker()()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def store(store_dir: Path):
    """The blob store the app uses."""
    from app.persistence.blobs import BlobStore

    return BlobStore(store_dir / "images")


class Workers:
    """`cxrlab worker` processes on the test database; every one still running is stopped at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, queues: str = "gpu,cpu") -> subprocess.Popen:
        """A new worker process consuming `queues`."""
        log = (self.log_dir / f"worker-{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-c", "from app.cli.main import main; main()", "worker", "--queues", queues],
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        """Everything the workers printed, for assertion messages."""
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("worker-*.log")))

    def log_size(self) -> int:
        """Bytes the workers have printed so far (a sign of progress)."""
        return sum(p.stat().st_size for p in self.log_dir.glob("worker-*.log"))

    def cpu_seconds(self) -> float:
        """CPU time the workers have spent so far (a sign of progress while they start or compute)."""
        return cpu_seconds(*(p.pid for p in self.procs))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Start real worker processes with `workers.start()`."""
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
