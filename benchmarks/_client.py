"""The simulated readers' HTTP client: a lean keep-alive HTTP/1.1 client on the standard library, or httpx.

A reader in a browser pays for its network stack in native code, microseconds a request. httpx pays in
Python, and on this machine that was 1.2-1.4 ms of the load generator's CPU per request to this app (0.5 ms
on a bare "ok" route, against 0.15 ms for `http.client`): about 1 ms of every request's figure was the
stopwatch, and in the saturation phases the generator took that CPU from the server it measured. The lean
client does only what the readers need (keep-alive, cookies by name, GET, form POST, no redirects), so a
figure is the server's. `--client httpx` keeps the figures of earlier runs comparable.
"""

from __future__ import annotations

import argparse
import http.client
import select
import socket
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import httpx

# What a reader's request may fail with, on either client: each counts as that reader's error.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, OSError, http.client.HTTPException)


class Client(Protocol):
    """What the readers use of a client (httpx.Client has it too)."""

    def get(self, url: str) -> Response | httpx.Response: ...
    def post(
        self, url: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> Response | httpx.Response: ...
    def close(self) -> None: ...


class Response:
    """A whole response: status, headers, body."""

    def __init__(self, status_code: int, headers: http.client.HTTPMessage, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body as text (the app sends UTF-8)."""
        return self.content.decode("utf-8", errors="replace")

    def raise_for_status(self) -> None:
        """An error for a 4xx or 5xx status."""
        if self.status_code >= 400:
            raise http.client.HTTPException(f"HTTP {self.status_code}")


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether an idle keep-alive socket has something to read: after a whole response, only the server's
    close (EOF) can be there."""
    return bool(select.select([sock], [], [], 0)[0])


class LeanClient:
    """One keep-alive connection with a cookie jar, as one browser tab holds (http:// only)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the lean client speaks plain http to a host: {base_url!r}")
        # http.client sets TCP_NODELAY, as browsers do: a small request must not wait for an ACK (Nagle).
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self._cookies: dict[str, str] = {}

    def get(self, url: str) -> Response:
        """GET `url` (a path)."""
        return self._send("GET", url, None, {})

    def post(self, url: str, data: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        """POST `data` as a form to `url` (a path), with `headers` added."""
        body = urlencode(data).encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._send("POST", url, body, form | (headers or {}))

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        if self._conn.sock is not None and _closed_by_peer(self._conn.sock):
            self._conn.close()  # the server closed it while idle (its keep-alive timeout); this reopens it
        headers = {"User-Agent": "bench-reader", "Accept": "*/*", **headers}
        if self._cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._cookies.items())
        try:
            self._conn.request(method, url, body=body, headers=headers)
            resp = self._conn.getresponse()
            content = resp.read()
        except BaseException:
            self._conn.close()  # a half-used connection cannot carry the next request
            raise
        for value in resp.headers.get_all("Set-Cookie") or ():
            self._keep_cookie(value)
        return Response(resp.status, resp.headers, content)

    def _keep_cookie(self, header: str) -> None:
        pair, _, attrs = header.partition(";")
        name, _, value = pair.strip().partition("=")
        attrs = attrs.lower().replace(" ", "")
        if "max-age=0" in attrs or "max-age=-" in attrs or "expires=thu,01jan197" in attrs:
            self._cookies.pop(name, None)  # the server deletes it
        else:
            self._cookies[name] = value

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The clients a benchmark may read with, by the name its --client option takes.
CLIENTS: dict[str, Callable[[str, float], Client]] = {
    "lean": LeanClient,
    "httpx": lambda base, timeout: httpx.Client(base_url=base, timeout=timeout),
}


def add_client_option(parser: argparse.ArgumentParser) -> None:
    """--client: the readers' HTTP client (lean by default; httpx as in runs before 2026-12-07)."""
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="lean",
        help="The simulated readers' HTTP client: lean (http.client, near a browser's cost) or httpx "
        "(as runs before 2026-12-07 measured).",
    )
