"""`cxrlab serve`: the web app under uvicorn, in one process or under uvicorn's process manager.

Every process answers any request: sessions, the sign-in throttle and run requests live in Postgres, and
the CSRF token is in the cookie signed with the shared SECRET_KEY. So N processes on one machine, or several
machines behind a proxy, behave as one (tests/integration/test_many_processes.py).
"""

from __future__ import annotations

import os
import socket
import sys

import uvicorn
from uvicorn.server import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from app.core.config import get_settings


class TcpConfig(uvicorn.Config):
    """uvicorn's configuration, with a listening socket that says it is TCP.

    uvicorn 0.54 binds the socket it shares with its worker processes without a protocol number, and
    asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP. Without it every keep-alive
    response waits for the client's delayed ACK: measured here, p50 of a bare GET 44 ms with two processes
    against 1.8 ms with one, and 0.7 ms with two once the socket carries its protocol (Kludex/uvicorn#3149).
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
            # The same descriptor, re-wrapped with the protocol named; the workers inherit it as is.
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock


def run_server(
    *, host: str | None, port: int | None, migrate: bool, workers: int | None = None, access_log: bool = True
) -> None:
    """Migrate, then serve with `workers` processes (default WEB_WORKERS, or one per core).

    The embedded server (no DATABASE_URL) is started here, in the parent, and its URL handed to the
    processes, so it lives as long as the parent and the processes do not start servers of their own.
    """
    from app.persistence.db import database_url, get_engine
    from app.persistence.migrate import upgrade

    settings = get_settings()
    settings.require_secret()
    if migrate:
        upgrade(get_engine())
    n = workers or settings.web_workers or os.cpu_count() or 1
    if n > 1 and not settings.database_url:
        os.environ["DATABASE_URL"] = database_url(settings)
    config = TcpConfig(
        "app.web.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=n,
        log_level="info",
        access_log=access_log,
        timeout_keep_alive=settings.web_keep_alive_s,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    server = uvicorn.Server(config)
    try:
        if n == 1:
            server.run()  # binds through asyncio, which sets TCP_NODELAY itself
        else:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
    except KeyboardInterrupt:
        pass
    if n == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)
