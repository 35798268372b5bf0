"""The README's demo with its worker: an admin samples a model over HTTP, the demo's worker runs it, and
the new set becomes the synthetic set of a study. Ctrl+C (SIGINT) stops the server and the worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from tests import factories
from tests.servers import free_port
from tests.waiting import cpu_seconds, patiently

pytestmark = pytest.mark.slow


def _csrf(page: httpx.Response) -> str:
    return factories.csrf_of(page.text)


def test_demo_worker_runs_a_sampling_run_started_in_the_app(tmp_path, db_url):
    port = free_port()
    env = {**os.environ, "STORE_DIR": str(tmp_path), "PORT": str(port), "CXRLAB_ENV": "development"}
    cli = [sys.executable, "-c", "from app.cli.main import main; main()"]
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [*cli, "demo", "--images", "8", "--cases", "6"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=base, timeout=10)
        demo_log = tmp_path / "demo.log"

        def answers() -> bool:
            assert demo.poll() is None, demo_log.read_text()
            try:
                client.get("/login")
            except httpx.TransportError:
                return False
            return True

        # The demo builds its sets and weights first: it fails only once it stops printing and computing.
        def signs() -> tuple:
            return (demo_log.stat().st_size, int(cpu_seconds(demo.pid)))

        patiently(answers, signs=signs, what="the demo's start", explain=demo_log.read_text)
        workers = [p for p in psutil.Process(demo.pid).children() if "worker" in " ".join(p.cmdline())]
        assert len(workers) == 1, "the demo starts one worker"

        login = client.get("/login")
        r = client.post(
            "/login",
            data={"email": "admin@demo.local", "password": "demo-reading-room", "csrf_token": _csrf(login)},
            follow_redirects=True,
        )
        assert r.status_code == 200
        form = client.get("/runs/new?kind=sample&model=phantom-pggan-64")
        key = re.search(r'name="request_key" value="([^"]+)"', form.text).group(1)
        r = client.post(
            "/runs",
            data={"csrf_token": _csrf(form), "kind": "sample", "request_key": key}
            | {"model": "phantom-pggan-64", "n": "8", "seed": "5", "set_name": "From the demo worker"},
        )
        assert r.status_code == 303, r.text
        run_url = r.headers["location"]
        def finished() -> httpx.Response | None:
            page = client.get(run_url)
            return page if "succeeded" in page.text else None

        page = patiently(
            finished,
            signs=signs,
            what="the demo worker's run",
            explain=demo_log.read_text,
        )
        set_id = int(re.search(r'href="/image-sets/(\d+)"', page.text).group(1))

        sets = client.get("/image-sets").text
        real_id = int(re.search(r'href="/image-sets/(\d+)">Demo real', sets).group(1))
        study_form = client.get(f"/studies/new?image_set_ids={set_id}")
        r = client.post(
            "/studies",
            data={
                "csrf_token": _csrf(study_form),
                "title": "Demo worker's samples",
                "image_set_ids": [str(real_id), str(set_id)],
                "n_cases": "8",
                "resolution": "64",
            },
        )
        assert r.status_code == 303, r.text
        study = client.get(r.headers["location"]).text
        assert "From the demo worker" in study
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    assert not [p for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
