"""From the end of the install to a served demo: `cxrlab demo` on a fresh embedded database, timed until
GET /login answers 200 at the URL it prints.

The installed virtualenv is used as is (the install is not timed). DATABASE_URL is removed from the
environment and STORE_DIR is a new temporary folder, so the demo starts its own embedded Postgres, migrates
it, imports its image sets, creates the accounts and the study, starts its worker and serves, exactly as on
a new machine after `demo.sh` has installed the packages. Each line the demo prints is stamped with the
seconds since the start, so the report shows where the time went; progress bars (carriage returns) are
kept as their last state. At the end the demo gets SIGINT (Ctrl+C) and the folder is deleted.

    .venv/bin/python benchmarks/bench_demo_start.py [--repo DIR] [--keep-log FILE] [-- extra demo options]

`--repo` runs another checkout's code with this virtualenv (its `app` package comes first on the path),
which is how the old code path was measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _serve import free_port

ROOT = Path(__file__).resolve().parents[1]


def _reader(stream, t0: float, lines: list[tuple[float, str]]) -> None:
    """Stamp each line, and each progress-bar redraw (split on carriage returns), with the time it began."""
    buf, began = "", 0.0
    while chunk := stream.read1(65536):
        now = time.monotonic() - t0
        parts = re.split(r"[\r\n]", buf + chunk.decode(errors="replace"))
        stamps = [began if buf else now] + [now] * (len(parts) - 1)
        buf = parts.pop()  # the unfinished last part
        began = stamps[-1]
        lines.extend((t, p.rstrip()) for t, p in zip(stamps, parts, strict=False) if p.strip())
    if buf.strip():
        lines.append((began, buf.rstrip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="Checkout whose code runs (default: this).")
    parser.add_argument("--timeout", type=float, default=7200.0, help="Give up after this many seconds.")
    parser.add_argument("--keep-log", type=Path, default=None, help="Write the stamped output here.")
    parser.add_argument("extra", nargs="*", help="Further `cxrlab demo` options (after --).")
    args = parser.parse_args()

    port = free_port()
    store = Path(tempfile.mkdtemp(prefix="cxrlab-demo-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRATION_DATABASE_URL")}
    env |= {"STORE_DIR": str(store), "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-c", "from app.cli.main import main; main()", "demo", *args.extra]
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    # A shell that starts this in the background ignores SIGINT in it; Ctrl+C is how the demo stops.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    proc = subprocess.Popen(
        cmd,
        cwd=args.repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    reader = threading.Thread(target=_reader, args=(proc.stdout, t0, lines), daemon=True)
    reader.start()
    served = None
    client = httpx.Client(timeout=5.0)  # one client: a new one per poll costs an SSL context each time
    try:
        while time.monotonic() - t0 < args.timeout and proc.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"http://127.0.0.1:{port}/login").status_code == 200:
                    served = time.monotonic() - t0
                    break
            time.sleep(0.25)
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
        shutil.rmtree(store, ignore_errors=True)

    # A progress bar redraws many times: keep the first and the last state of each bar.
    shown: list[tuple[float, str]] = []
    for t, line in lines:
        if served is not None and t > served:
            break  # what follows is the shutdown
        bar = re.match(r"^(.*?):\s+\d+%\|", line)
        same = bar and len(shown) > 1 and shown[-1][1].startswith(bar.group(1) + ":")
        if same and shown[-2][1].startswith(bar.group(1) + ":"):
            shown[-1] = (t, line)
            continue
        shown.append((t, line))
    log = "\n".join(f"{t:7.1f} s  {line}" for t, line in shown)
    if args.keep_log:
        args.keep_log.write_text(log + "\n")
    print(log)
    print()
    print(f"code: {args.repo}  cores: {os.cpu_count()}  load average at the end: {os.getloadavg()[0]:.1f}")
    if served is None:
        print(f"the demo did not answer within {args.timeout:.0f} s (exit code {proc.returncode})")
        sys.exit(1)
    print(f"install end -> demo answering GET /login 200: {served:.1f} s")


if __name__ == "__main__":
    main()
