"""`cxrlab serve`: the web app under uvicorn, in one process or under uvicorn's process manager, whose
workers each listen on a socket of their own on the one port (SO_REUSEPORT).

Every process answers any request: sessions, the sign-in throttle and run requests live in Postgres, and
the CSRF token is in the cookie signed with the shared SECRET_KEY. So N processes on one machine, or several
machines behind a proxy, behave as one (tests/integration/test_many_processes.py).
"""

from __future__ import annotations

import logging
import os
import socket
import sys

import uvicorn
from uvicorn.server import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from app.core.config import get_settings


def _worker_socket(family: int, address: tuple) -> socket.socket:
    """In a worker process: a listening socket of its own on the address the parent holds."""
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


class PortHolder(socket.socket):
    """The parent's socket: bound with SO_REUSEPORT and never listening, so it holds the port and takes no
    connections. Sent to a worker process (multiprocessing pickles the sockets it passes), it arrives as
    that worker's own socket on the same address, and the kernel spreads new connections over the workers.

    With one socket shared by every worker, all of them woke for each waiting connection and asyncio's
    loop accepted up to the backlog in one go, so whichever process woke first took every waiting
    connection; a keep-alive connection then stays with it. bench_reading's 20 readers, signed in at
    once, ran on one process at 83 % of a core while the other idled at 9 %.

    The price: connections still waiting in a worker's queue when that worker stops (a restart, a crash)
    are reset instead of going to another worker, unless the kernel migrates them
    (net.ipv4.tcp_migrate_req = 1); and the kernel spreads connections by address, not by load.
    """

    def __reduce__(self) -> tuple:
        return (_worker_socket, (self.family, self.getsockname()))


class TcpConfig(uvicorn.Config):
    """uvicorn's configuration for several worker processes: a socket per worker on one port (PortHolder),
    each created with its protocol number.

    uvicorn 0.54 binds the socket it shares with its worker processes without a protocol number, and
    asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP. Without it every keep-alive
    response waits for the client's delayed ACK: measured here, p50 of a bare GET 44 ms with two processes
    against 1.8 ms with one, and 0.7 ms with two once the socket carries its protocol (Kludex/uvicorn#3149).
    """

    def bind_socket(self) -> socket.socket:
        if self.uds is not None or self.fd is not None:
            return super().bind_socket()
        family = socket.AF_INET6 if self.host and ":" in self.host else socket.AF_INET
        # Only Linux spreads connections over sockets sharing a port; elsewhere the workers share this one.
        reuse_port = sys.platform.startswith("linux")
        log = logging.getLogger("uvicorn.error")
        try:
            # First without SO_REUSEPORT: a port another server holds is refused ("address already in
            # use") rather than shared with it, which SO_REUSEPORT alone would allow.
            with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.host, self.port))
                address = probe.getsockname()  # the port chosen when 0 was asked for
            kind = PortHolder if reuse_port else socket.socket
            sock = kind(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
        except OSError as exc:
            log.error(exc)
            sys.exit(STARTUP_FAILURE)
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        log.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, address[1])
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
