"""The app served by uvicorn in a subprocess for the benchmarks: one worker process, or uvicorn's process
manager with several; started once it answers, stopped with nothing left behind."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx
import psutil

if TYPE_CHECKING:
    from _setup import BenchEnv

# uvicorn runs in the repository root: templates, static files and migrations are found from there.
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    env: BenchEnv, port: int, *, workers: int = 1, timeout_s: float = 60.0, root: Path = ROOT
) -> subprocess.Popen:
    """The app as `cxrlab serve` runs it, on `port` in its own process (loopback), once it answers; with
    workers > 1, uvicorn's process manager and that many worker processes, once each has started. `root`:
    the checkout whose code it serves (another one's `app` is imported from its folder before this one's).

    Through the product's own command, not `python -m uvicorn`: it carries the fix for uvicorn's shared
    socket (app/cli/serving.py), without which two processes answered each keep-alive request ~40 ms late.
    """
    cmd = [sys.executable, "-c", "from app.cli.main import main; main()", "serve", "--no-migrate"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    env_vars = {**os.environ, **env.server_env}
    proc = subprocess.Popen(cmd, cwd=root, env=env_vars, stderr=subprocess.PIPE, text=True)
    ready = _all_started(proc, workers)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            _reap(_children(proc))
            raise RuntimeError(f"uvicorn exited with code {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/login", timeout=2.0).status_code == 200 and ready.is_set():
                return proc
        if time.monotonic() > deadline:
            children = _children(proc)
            proc.kill()
            proc.wait(timeout=5)
            _reap(children)
            raise RuntimeError("uvicorn did not answer within the timeout")
        time.sleep(0.2)


def _all_started(proc: subprocess.Popen, workers: int) -> threading.Event:
    # The first answer says only that one worker is up, and a keep-alive connection stays with the worker
    # that accepted it, so readers that start early would all land there. So with several workers the
    # server's stderr is read (for as long as it runs: a full pipe would block the workers) for each
    # worker's "Application startup complete"; everything but uvicorn's info lines is passed on.
    ready = threading.Event()
    if proc.stderr is None:
        ready.set()
        return ready

    def pump(stream: IO[str]) -> None:
        started = 0
        for line in stream:
            if "Application startup complete" in line:
                started += 1
                if started >= workers:
                    ready.set()
            if not line.startswith("INFO:"):
                sys.stderr.write(line)

    threading.Thread(target=pump, args=(proc.stderr,), daemon=True).start()
    return ready


def _children(proc: subprocess.Popen) -> list[psutil.Process]:
    # Listed before the manager is stopped: once it has exited, its workers are no longer its children.
    with contextlib.suppress(psutil.Error):
        return psutil.Process(proc.pid).children(recursive=True)
    return []


def _reap(children: list[psutil.Process]) -> None:
    # uvicorn's manager stops and joins its workers on SIGTERM; one that outlives it (hung, or the manager
    # was killed) would keep the port and its database connections, so it is killed.
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it lingers; then any worker left behind."""
    children = _children(proc)
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    _reap(children)


@contextlib.contextmanager
def serve(
    env: BenchEnv, *, workers: int = 1, timeout_s: float = 60.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """The app under uvicorn in its own process(es) (`workers`, loopback), as in production; stopped after."""
    port = free_port()
    proc = start_server(env, port, workers=workers, timeout_s=timeout_s)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop_server(proc)
