"""The app served by real processes on the test database: uvicorn, or `cxrlab serve` with its workers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.waiting import cpu_seconds, patiently

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uvicorn_command(port: int) -> list[str]:
    """One uvicorn process serving the app, as the browser tests and the benchmarks run it."""
    server = [sys.executable, "-m", "uvicorn", "app.web.main:app"]
    return [*server, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process, and kill it if it has not ended 20 s later."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def serving(
    command: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `command` (a server on `port`, with `env` added to the environment) until it answers; stop it
    and every child afterwards."""
    proc = subprocess.Popen(command, env=os.environ | (env or {}), cwd=REPO)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the app server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(base + "/login", timeout=5)
        except OSError:
            return False
        return True

    try:
        # Given up only once the starting server stops spending CPU time: a busy machine is slow, not stuck.
        patiently(answers, signs=lambda: int(cpu_seconds(proc.pid)), what="the server's start", quiet_s=30)
        yield base, proc
    finally:
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        stop(proc)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
