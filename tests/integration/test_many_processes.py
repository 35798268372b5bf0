"""Many web processes, one truth: a session, the sign-in throttle and the CSRF token made by one process hold
in another (two servers on one database, as two machines behind a proxy), and `cxrlab serve --workers 2`
runs two processes that both answer. And one process under a burst wider than its pool answers every
request."""

from __future__ import annotations

import contextlib
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from sqlalchemy import func, select

from app.persistence.models import Reading
from tests import factories
from tests.servers import free_port, serving, uvicorn_command

pytestmark = pytest.mark.slow

CASE_ID = re.compile(r'name="case_id" value="([^"]+)"')


@pytest.fixture
def two_servers(db_url):
    """Two independent single-process servers on the test database."""
    with contextlib.ExitStack() as stack:
        bases = []
        for _ in range(2):
            port = free_port()
            base, _proc = stack.enter_context(serving(uvicorn_command(port), port))
            bases.append(base)
        yield bases


def _csrf(response: httpx.Response) -> str:
    return factories.csrf_of(response.text)


def test_signed_in_through_one_process_reading_through_the_other(session, store, people, two_servers):
    a, b = two_servers
    reader = people["reader"]
    study = factories.launched_study(
        session, store, readers=[reader], creator=people["researcher"], n_cases=4
    )
    session.commit()
    with httpx.Client(base_url=a, follow_redirects=True) as on_a, httpx.Client(base_url=b) as on_b:
        assert factories.login(on_a, reader.email).status_code == 200
        on_b.cookies.update(on_a.cookies)
        page = on_b.get(f"/read/{study.id}/case")
        assert page.status_code == 200, page.text
        answer = {
            "csrf_token": _csrf(on_a.get("/read")),  # a token that process A rendered, posted to B
            "case_id": CASE_ID.search(page.text).group(1),
            "client_token": "two-processes-1",
            "verdict": "real",
            "confidence": "3",
        }
        assert on_b.post(f"/read/{study.id}/case", data=answer).status_code == 303
        assert session.scalar(select(func.count()).select_from(Reading)) == 1
        on_b.post("/logout", data={"csrf_token": _csrf(on_b.get("/read"))})
        assert str(on_a.get("/read").url).endswith("/login?next=/read")  # ended on B, ended on A


def test_the_sign_in_throttle_is_shared(people, two_servers):
    a, b = two_servers
    email = people["reader"].email
    with httpx.Client(base_url=a) as on_a, httpx.Client(base_url=b) as on_b:
        for _ in range(5):
            assert factories.login(on_a, email, "not the password").status_code == 401
        assert factories.login(on_b, email, "not the password").status_code == 429


def test_serve_with_two_workers_runs_two_answering_processes(db_url, tmp_path):
    port = free_port()
    command = [sys.executable, "-c", "from app.cli.main import main; main()", "serve", "--no-migrate"]
    command += ["--port", str(port), "--workers", "2"]
    with serving(command, port) as (base, proc):
        spawned = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert len(spawned) == 2
        # Fresh connections land on either process; every one is answered.
        for _ in range(20):
            with httpx.Client(base_url=base) as client:
                assert client.get("/login").status_code == 200
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in spawned)


def test_a_burst_of_two_hop_requests_wider_than_the_pool_is_answered(people):
    """A sync route behind the sync user dependency runs in two worker threads, one after the other; a
    request that held its connection between them let a burst of 24 on a pool of 2 (and 2 more for a
    moment) wait out the pool's 30 s timeout: every thread waited for a connection, every connection
    for a thread (app.web.deps.optional_user)."""
    port = free_port()
    with serving(uvicorn_command(port), port, env={"DB_POOL_SIZE": "2"}) as (base, _proc):
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            assert factories.login(client, people["reader"].email).status_code == 200
            cookies = dict(client.cookies)

        def my_studies(_: int) -> int:
            with httpx.Client(base_url=base, cookies=cookies, timeout=120) as one:
                return one.get("/read").status_code

        with ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(my_studies, range(48)))
    assert codes == [200] * 48
