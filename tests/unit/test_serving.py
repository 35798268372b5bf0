"""`cxrlab serve`'s shared listening socket names its protocol, so the worker processes' connections get
TCP_NODELAY (without it uvicorn's process manager added ~40 ms to every keep-alive response)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.cli.serving import TcpConfig
from tests import factories


def test_the_shared_socket_is_tcp_and_its_connections_get_nodelay():
    sock = TcpConfig("app.web.main:app", host="127.0.0.1", port=0, workers=2).bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        sock.listen()

        async def accept_one() -> int:
            accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                conn = writer.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                writer.close()

            server = await asyncio.start_server(on_connect, sock=sock)
            async with server:
                _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
                value = await asyncio.wait_for(accepted, 30)
                writer.close()
            return value

        # In a thread of its own: a browser test earlier in the session may leave a loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(asyncio.run, accept_one()).result(60) != 0
    finally:
        sock.close()


def test_idle_connections_stay_open_as_long_as_the_setting_says(monkeypatch):
    """Readers look at a film for seconds between requests; uvicorn's default 5 s closed their connections."""
    import uvicorn

    from app.cli import serving
    from app.core.config import get_settings

    seen: dict[str, float] = {}

    def run(self: uvicorn.Server, sockets: object = None) -> None:
        seen["keep_alive"] = self.config.timeout_keep_alive
        self.started = True

    monkeypatch.setenv("WEB_KEEP_ALIVE_S", "42")
    monkeypatch.setenv("CXRLAB_ENV", "development")
    monkeypatch.setattr(uvicorn.Server, "run", run)
    get_settings.cache_clear()
    try:
        serving.run_server(host="127.0.0.1", port=0, migrate=False, workers=1)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert seen == {"keep_alive": 42}


def test_the_app_freezes_what_it_built_before_serving(monkeypatch):
    """A full collection over the ~180,000 objects built at startup took 62 ms, stalling every request."""
    import gc

    from starlette.testclient import TestClient

    app = factories.app_with_env(monkeypatch, CXRLAB_ENV="development")
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(app):
        assert gc.get_freeze_count() > 50_000


def test_each_worker_gets_a_socket_of_its_own_and_connections_spread_over_them():
    """One socket shared by the workers let the first to wake take every waiting connection."""
    from multiprocessing.reduction import ForkingPickler

    holder = TcpConfig("app.web.main:app", host="127.0.0.1", port=0, workers=2).bind_socket()
    # What each worker process receives: multiprocessing pickles the sockets uvicorn passes to it.
    workers = [ForkingPickler.loads(ForkingPickler.dumps(holder)) for _ in range(2)]
    clients = []
    try:
        assert all(w.getsockname() == holder.getsockname() and w.fileno() != holder.fileno() for w in workers)
        assert all(w.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for w in workers)
        for w in workers:
            w.listen()
            w.setblocking(False)
        clients = [socket.create_connection(holder.getsockname()[:2]) for _ in range(20)]
        time.sleep(0.2)  # every handshake finished and queued on its socket
        taken = []
        for w in workers:
            n = 0
            with contextlib.suppress(BlockingIOError):
                while True:
                    w.accept()[0].close()
                    n += 1
            taken.append(n)
        assert sum(taken) == 20 and min(taken) > 0, taken  # the holder, never listening, took none
    finally:
        for s in (*clients, *workers, holder):
            s.close()


def test_a_port_another_server_listens_on_is_refused_not_shared():
    """SO_REUSEPORT alone would let a second `cxrlab serve` join the first one's port."""
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        config = TcpConfig("app.web.main:app", host="127.0.0.1", port=other.getsockname()[1], workers=2)
        with pytest.raises(SystemExit):
            config.bind_socket()
    finally:
        other.close()
