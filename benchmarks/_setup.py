"""Shared scaffolding for the benchmarks: a throw-away database, a served app, seeding and statistics.

Every benchmark runs against its own fresh database (a new database on the server named by
--database-url / DATABASE_URL, dropped afterwards, or the embedded server in a temporary STORE_DIR),
so it never touches real data.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import psutil

# Re-exported: the benchmarks import the server helpers from here, beside the database they serve.
from _serve import free_port, serve, start_server, stop_server  # noqa: F401
from tqdm import tqdm

# The repository root: `app` imports from a checkout, and uvicorn runs there (templates, static, migrations).
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from _client import Client
    from sqlalchemy.orm import Session

    from app.persistence.blobs import BlobStore
    from app.persistence.models import ImageSet

T = TypeVar("T")
# Passes the app's password rules (12+ characters, nothing guessable), as every account needs.
PASSWORD = "Lantern orbit cobalt 48"


@dataclass(frozen=True)
class BenchEnv:
    """Where the benchmark's data lives: a SQLAlchemy URL, a libpq URL and a temporary STORE_DIR."""

    sqlalchemy_url: str
    libpq_url: str
    store_dir: Path
    server_env: dict[str, str]
    label: str


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """The --database-url option shared by every benchmark (default: DATABASE_URL, else embedded)."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or None,
        help="A postgresql:// URL of a server on which a throw-away database is created and dropped; "
        "default DATABASE_URL, or the embedded server in a temporary STORE_DIR when neither is set.",
    )


def _to_libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _reset_app_caches() -> None:
    # Settings, engine and session factory are cached per process; the benchmark changes the env first.
    from app.core.config import get_settings
    from app.persistence.db import get_engine, get_sessionmaker

    get_settings.cache_clear()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


@contextlib.contextmanager
def bench_database(server_url: str | None) -> Iterator[BenchEnv]:
    """A fresh, migrated database for this run; dropped (or its embedded server stopped) at the end."""
    from sqlalchemy import create_engine, text

    from app.core.embedded_db import embedded_url, sqlalchemy_url, stop_embedded

    store_dir = Path(tempfile.mkdtemp(prefix="cxrlab-bench-"))
    admin_engine = engine = None
    db_name = None
    try:
        if server_url:
            admin_url = sqlalchemy_url(server_url)
            db_name = f"cxrlab_bench_{secrets.token_hex(4)}"
            admin_engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin_engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{db_name}"'))
            from sqlalchemy.engine import make_url

            url = make_url(admin_url).set(database=db_name).render_as_string(hide_password=False)
            label = f"server {make_url(admin_url).host or 'local socket'}, database {db_name}"
        else:
            url = embedded_url(store_dir / "pgdata")
            label = f"embedded Postgres in {store_dir.name}"
        # The app reads only these; the served subprocess gets the same (the embedded server is shared).
        env = {
            "DATABASE_URL": url,
            "STORE_DIR": str(store_dir),
            "SECRET_KEY": secrets.token_urlsafe(32),
            "CXRLAB_ENV": "development",
        }
        os.environ.update(env)
        _reset_app_caches()
        from app.persistence.db import get_engine
        from app.persistence.migrate import upgrade

        engine = get_engine()
        upgrade(engine)
        yield BenchEnv(url, _to_libpq(url), store_dir, env, label)
    finally:
        if engine is not None:
            engine.dispose()
        _reset_app_caches()
        if admin_engine is not None and db_name is not None:
            with admin_engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            admin_engine.dispose()
        stop_embedded()
        shutil.rmtree(store_dir, ignore_errors=True)


def csrf_of(html: str) -> str:
    """The CSRF token embedded in a page."""
    # The form field, or else the same token as the header value htmx sends (pages without a form).
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'"X-CSRF-Token": "([^"]+)"', html)
    if m is None:
        raise RuntimeError("page has no CSRF token")
    return m.group(1)


def login(client: Client, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form (the session cookie lands in the client's jar)."""
    page = client.get("/login")
    resp = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )
    if resp.status_code != 303:
        raise RuntimeError(f"sign-in of {email} failed with HTTP {resp.status_code}")


def phantom_set(
    session: Session, store: BlobStore, *, name: str, kind: str, n: int, size: int, seed: int
) -> ImageSet:
    """An image set of demo-config phantoms imported through the normal path, with a progress bar."""
    from app.cli.images import phantom_items, phantom_schema
    from app.domain.importers import ImportSpec, import_images

    spec = ImportSpec(name=name, kind=kind, label_schema=phantom_schema(), resolution=size, source="phantoms")
    with tqdm(total=n, unit="img", desc=f"phantoms {name}", leave=False) as bar:
        return import_images(
            session,
            store,
            spec,
            phantom_items(n, size=size, seed=seed, demo=True),
            actor_id=None,
            progress=lambda k: bar.update(k - bar.n),
        )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class RssSampler:
    """Samples a process's resident memory in a thread; growth is the peak minus the first sample."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.01) -> None:
        self._proc = psutil.Process(pid)
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start_bytes = self._rss()
        self.peak_bytes = self.start_bytes

    def _rss(self) -> int:
        # The process alone: an embedded Postgres may be a child, and its memory is not the app's.
        return self._proc.memory_info().rss

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._rss())
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._rss())

    @property
    def growth_mib(self) -> float:
        """Peak RSS minus RSS at the start, in MiB."""
        return (self.peak_bytes - self.start_bytes) / 2**20


class CpuMeter:
    """Where the machine's CPU went between start() and stop(): the load generator (this process), the app
    (the server process and its workers) and Postgres (every process named postgres), each as a share of
    all cores over the wall time, and each app process's share of one core. On a machine they share, the
    generator's share is CPU the app lacked; an app process near 100 % of a core is bound by its GIL.

    With `database` (a libpq URL), also the connections Postgres opened to that database meanwhile: a
    backend that starts and ends between the readings takes its CPU with it, so a pool that opens and
    closes connections shows here, and its cost is missing from Postgres's share.

    And each app process's clients as start() found them: the connections open to its listening port. A
    reader keeps its connection, so how they fell between the processes decides what each can do."""

    def __init__(self, server_pid: int, database: str | None = None) -> None:
        self._server = psutil.Process(server_pid)
        self._database = database
        self._at: tuple[float, dict[str, dict[int, float]]] | None = None
        self._sessions = 0
        self.shares: dict[str, float] = {}
        self.app_processes: list[float] = []
        self.app_clients: list[int] = []  # in the order of app_processes
        self._clients: dict[int, int] = {}
        self.connections_opened: int | None = None

    def _sessions_so_far(self) -> int:
        # pg_stat_database counts a session when it starts; a backend reports it at its first idle moment,
        # or as it exits, so one opened and closed between the two readings is counted.
        import psycopg

        with psycopg.connect(self._database, autocommit=True) as conn:
            row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return int(row.fetchone()[0])

    def _seconds(self) -> dict[str, dict[int, float]]:
        def cpu(procs: Iterable[psutil.Process]) -> dict[int, float]:
            out = {}
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    out[p.pid] = t.user + t.system
            return out

        postgres = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
        app = [self._server, *self._server.children(recursive=True)]
        return {"load generator": cpu([psutil.Process()]), "app": cpu(app), "Postgres": cpu(postgres)}

    def _clients_now(self) -> dict[int, int]:
        """Connections open to each app process's listening port, by pid."""
        out = {}
        for p in [self._server, *self._server.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                tcp = p.net_connections("tcp")
                ports = {c.laddr.port for c in tcp if c.status == psutil.CONN_LISTEN}
                out[p.pid] = sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port in ports for c in tcp)
        return out

    def start(self) -> None:
        """Begin counting."""
        if self._database:
            self._sessions = self._sessions_so_far()
        self._clients = self._clients_now()
        self._at = (time.perf_counter(), self._seconds())

    def stop(self) -> None:
        """Stop counting; `shares` then holds each part's share of all cores, per process deltas (a process
        that started meanwhile counts from zero, one that ended is lost)."""
        if self._at is None:
            return
        t0, before = self._at
        after, cores = self._seconds(), psutil.cpu_count() or 1
        wall = time.perf_counter() - t0
        used = {k: {pid: t - before[k].get(pid, 0.0) for pid, t in after[k].items()} for k in after}
        self.shares = {k: sum(v.values()) / (wall * cores) for k, v in used.items()}
        busy = sorted(((t / wall, pid) for pid, t in used["app"].items() if t / wall > 0.02), reverse=True)
        self.app_processes = [share for share, _ in busy]
        self.app_clients = [self._clients.get(pid, 0) for _, pid in busy]
        if self._database:
            # Less the session start() read through (a reading does not count its own).
            self.connections_opened = self._sessions_so_far() - self._sessions - 1


def mib(n_bytes: float) -> float:
    """Bytes as MiB."""
    return n_bytes / 2**20


def timed(fn: Callable[[], T], *, pid: int | None = None) -> tuple[T, float, float]:
    """(fn's result, wall seconds, RSS growth in MiB of process `pid`, default this one)."""
    with RssSampler(pid) as rss:
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return result, seconds, rss.growth_mib


def traced_peak(fn: Callable[[], object]) -> float:
    """Peak Python heap (tracemalloc) in MiB above its start; run apart from timing, as it slows code."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    try:
        fn()
        return mib(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()


def count_lines(path: Path) -> int:
    """Physical lines of a file."""
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def csv_records(path: Path) -> int:
    """CSV records of a file, header included, as a reader of the export would count them."""
    with path.open(newline="") as fh:
        return sum(1 for _ in csv.reader(fh))
