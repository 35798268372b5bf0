"""`cxrlab serve`'s shared listening socket names its protocol, so the worker processes' connections get
TCP_NODELAY (without it uvicorn's process manager added ~40 ms to every keep-alive response)."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

from app.cli.serving import TcpConfig


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
