"""Simulated readers for bench_reading (and the benchmarks that borrow its readers): the case loop, readers
who never pause, a crowd who look at each film for a few seconds, a static-file baseline, and a count of
the SQL statements behind one case.

Each reader is a thread with its own client (benchmarks/_client.py), so each has its own keep-alive
connection and cookie jar, as a browser would.
"""

from __future__ import annotations

import argparse
import random
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field

from _client import TRANSPORT_ERRORS, Client, LeanClient
from _setup import CpuMeter, csrf_of, login
from tqdm import tqdm

CASE_ID = re.compile(r'name="case_id" value="([^"]+)"')
HTMX = {"HX-Request": "true"}  # what htmx sends with a request it makes


@dataclass
class Timings:
    """Milliseconds per iteration of one phase, merged over its readers."""

    page_image: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    # The two halves of page_image, each request alone (bench_paired prints them).
    page: list[float] = field(default_factory=list)
    image: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    # Share of all cores per part (load generator, app, Postgres) while the phase's clock ran.
    cpu: dict[str, float] = field(default_factory=dict)
    app_cpu: list[float] = field(default_factory=list)  # each app process's share of one core
    app_clients: list[int] = field(default_factory=list)  # and its clients' connections at the start
    connections_opened: int | None = None  # Postgres connections opened while the clock ran
    # How late a thread of the load generator woke from a 1 ms sleep, in ms (LagProbe): the delay any
    # reader thread's timing may carry from the generator itself (its GIL, its share of the cores).
    client_lag: list[float] = field(default_factory=list)

    def merge(self, other: Timings) -> None:
        """Add another reader's samples."""
        self.page_image += other.page_image
        self.post += other.post
        self.page += other.page
        self.image += other.image
        self.errors += other.errors

    def close(self, parts: list[Timings], meter: CpuMeter | None) -> Timings:
        """Stop the phase's CPU meter, keep its shares, and merge every reader's samples into this one."""
        if meter:
            meter.stop()
            self.cpu, self.app_cpu, self.app_clients = meter.shares, meter.app_processes, meter.app_clients
            self.connections_opened = meter.connections_opened
        for t in parts:
            self.merge(t)
        return self

    @property
    def rate(self) -> float:
        """Answered cases per second of the phase's wall time."""
        return len(self.post) / self.wall_s if self.wall_s else float("nan")


# Makes a reader's client for (base URL, timeout in s): LeanClient, or httpx.Client for `--client httpx`.
Connect = Callable[[str, float], Client]


class Reader:
    """One simulated reader: a client (its connection and cookies) and the case in front of them.

    `browser` (the default): answers as the reading room's page does, an htmx POST whose response is the
    next case's region, so a case costs the answer and the image; the case page is fetched only for the
    first case and after a practice case's feedback. Otherwise as a browser without JavaScript does (and
    every run before 2026-12-07): the answer's 303, then GET the case page, three requests a case.
    """

    def __init__(self, client: Client, study_id: int, *, browser: bool = True) -> None:
        self.client, self.study_id, self.browser = client, study_id, browser
        self._page: str | None = None  # the next case's HTML, when the last answer brought it
        self._page_ms = 0.0  # what it took to arrive
        self._csrf = ""

    def read(
        self,
        n: int,
        rng: random.Random,
        out: Timings,
        *,
        think: tuple[float, float] | None = None,
        on: Callable[[str], object] | None = None,
    ) -> None:
        """Up to n iterations of case -> image -> (think) -> answer; stops early when the reader is done.

        Timed per case: "page" (the request that brought the case: the case page, or in the browser flow
        the answer before, whose time then counts as both), "image", their sum "page_image", and "post".
        A case an answer brought before this call (the warm-up's last) carries that answer's time.
        `think` (min, max seconds): a pause drawn uniformly between receiving the case and answering it.
        `on` hears "page", "image" and "submit" before each request and "done" after each case.
        """
        step = on or (lambda _what: None)
        for _ in range(n):
            # A transport error or timeout counts as an error of this reader, who then stops, as one whose
            # browser failed would; it must not vanish with the thread.
            try:
                if not self._read_one(rng, out, think, step):
                    return
                step("done")
            except TRANSPORT_ERRORS as exc:
                out.errors.append(f"{type(exc).__name__}: {exc}")
                return

    def _read_one(
        self, rng: random.Random, out: Timings, think: tuple[float, float] | None, step: Callable
    ) -> bool:
        """One case; False when the reader has finished or met an error (recorded in `out`)."""
        study = self.study_id
        if self._page is None:
            step("page")
            t0 = time.perf_counter()
            page = self.client.get(f"/read/{study}/case")
            self._page_ms = (time.perf_counter() - t0) * 1000
            if page.status_code == 303:  # the reader has finished the study
                return False
            if page.status_code != 200 or CASE_ID.search(page.text) is None:
                out.errors.append(f"case page HTTP {page.status_code}")
                return False
            self._page, self._csrf = page.text, csrf_of(page.text)
        case_id = CASE_ID.search(self._page).group(1)
        self._page = None
        step("image")
        t0 = time.perf_counter()
        img = self.client.get(f"/img/{case_id}")
        image_ms = (time.perf_counter() - t0) * 1000
        if img.status_code != 200 or not img.content.startswith(b"\x89PNG"):
            out.errors.append(f"image HTTP {img.status_code}")
            return False
        out.page_image.append(self._page_ms + image_ms)
        out.page.append(self._page_ms)
        out.image.append(image_ms)
        if think is not None:
            time.sleep(rng.uniform(*think))
        form = {
            "csrf_token": self._csrf,  # the page's token; the region an answer brings carries none
            "case_id": case_id,
            "client_token": uuid.uuid4().hex,
            "verdict": rng.choice(("real", "synthetic")),
            "confidence": str(rng.randint(1, 5)),
        }
        step("submit")
        t0 = time.perf_counter()
        resp = self.client.post(f"/read/{study}/case", data=form, headers=HTMX if self.browser else None)
        post_ms = (time.perf_counter() - t0) * 1000
        out.post.append(post_ms)
        # 303 (no JavaScript) to the next case; 200 with the next case, the practice feedback, or (as
        # HX-Redirect) the way to the end page.
        if resp.status_code not in (200, 303):
            out.errors.append(f"submit HTTP {resp.status_code}")
            return False
        if self.browser and resp.status_code == 200:
            if resp.headers.get("HX-Redirect"):
                return False
            if CASE_ID.search(resp.text):
                self._page, self._page_ms = resp.text, post_ms
        return True


class LagProbe:
    """A thread that sleeps 1 ms every 20 ms and records how late it woke: the load generator's own
    scheduling delay, which a reader thread's timing carries too (a response that arrived is not read
    until its thread holds the interpreter lock again)."""

    def __init__(self) -> None:
        self.lag_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            t0 = time.perf_counter()
            time.sleep(0.001)
            self.lag_ms.append((time.perf_counter() - t0) * 1000 - 1.0)

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _sign_in(client: Client, email: str, out: Timings) -> bool:
    try:
        login(client, email)
        return True
    except (RuntimeError, *TRANSPORT_ERRORS) as exc:
        out.errors.append(f"sign-in: {exc}")
        return False


def run_readers(
    base: str,
    study_id: int,
    emails: list[str],
    n: int,
    *,
    timeout_s: float,
    warmup: int = 0,
    meter: CpuMeter | None = None,
    connect: Connect = LeanClient,
    browser: bool = True,
) -> Timings:
    """All readers sign in and read `warmup` untimed cases, wait at a barrier, then read n cases each in
    parallel threads, never pausing: the load that saturates the server. `browser`: as Reader."""
    total = Timings()
    per_reader = [Timings() for _ in emails]
    barrier = threading.Barrier(len(emails) + 1)

    def reader(i: int) -> None:
        ok = False
        with closing(connect(base, timeout_s)) as client:
            one = Reader(client, study_id, browser=browser)
            try:
                ok = _sign_in(client, emails[i], per_reader[i])
                # Untimed first cases open this reader's keep-alive connection and warm the worker it
                # landed on (templates, pool connections), as the solo phase does for its reader.
                if ok and warmup:
                    one.read(warmup, random.Random(-1 - i), per_reader[i])
            finally:
                barrier.wait()  # never leave the others waiting, even when sign-in failed
            if ok and not per_reader[i].errors:
                one.read(n, random.Random(i), per_reader[i])

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(len(emails))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    if meter:
        meter.start()
    for t in threads:
        t.join(timeout=timeout_s * n * 3)
    total.wall_s = time.perf_counter() - start
    return total.close(per_reader, meter)


def run_crowd(
    base: str,
    study_id: int,
    emails: list[str],
    n: int,
    *,
    think: tuple[float, float],
    timeout_s: float,
    meter: CpuMeter | None = None,
    connect: Connect = LeanClient,
    browser: bool = True,
) -> Timings:
    """Readers who look at each film: each reads n cases, pausing `think` seconds (uniform) before each
    answer; they arrive spread over the first think interval. `browser`: as Reader."""
    clients = [connect(base, timeout_s) for _ in emails]
    per_reader = [Timings() for _ in emails]
    # Sign-in comes before the clock: each costs an argon2 check (tens of ms of server CPU), and a
    # clinic's readers sign in over the morning, not in the minute the figures describe.
    with (
        tqdm(total=len(emails), desc="crowd sign-in", unit="reader", leave=False) as bar,
        ThreadPoolExecutor(4) as pool,
    ):
        for _ in pool.map(lambda i: _sign_in(clients[i], emails[i], per_reader[i]), range(len(emails))):
            bar.update()
    lock = threading.Lock()
    bar = tqdm(total=len(emails) * n, desc="crowd cases", unit="case", leave=False)

    def tick(what: str) -> None:
        if what == "done":
            with lock:  # tqdm's counter is not atomic across 200 threads
                bar.update()

    def reader(i: int) -> None:
        rng = random.Random(10_000 + i)
        time.sleep(rng.uniform(0, think[1]))  # staggered arrival, not 200 readers in the same instant
        if not per_reader[i].errors:
            Reader(clients[i], study_id, browser=browser).read(n, rng, per_reader[i], think=think, on=tick)

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(len(emails))]
    start = time.perf_counter()
    if meter:
        meter.start()
    try:
        with LagProbe() as probe:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=think[1] + n * (think[1] + 3 * timeout_s))
    finally:
        bar.close()
        for c in clients:
            c.close()
    done = Timings(wall_s=time.perf_counter() - start, client_lag=probe.lag_ms)
    return done.close(per_reader, meter)


def run_static(
    base: str, path: str, clients: int, n: int, *, timeout_s: float, connect: Connect = LeanClient
) -> tuple[list[float], list[str]]:
    """Milliseconds per GET of a static file, with `clients` concurrent connections of n requests each;
    and the errors."""
    samples: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    barrier = threading.Barrier(clients)

    def worker(i: int) -> None:
        with closing(connect(base, timeout_s)) as client:
            try:
                try:
                    client.get(path)  # open the keep-alive connection outside the timing
                finally:
                    barrier.wait()  # never leave the others waiting
                for _ in range(n):
                    t0 = time.perf_counter()
                    r = client.get(path)
                    samples[i].append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
            except TRANSPORT_ERRORS as exc:
                errors.append(f"static {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout_s * n)
    return [x for s in samples for x in s], errors


def count_queries(
    study_id: int, email: str, *, warmup: int, browser: bool = True
) -> tuple[dict[str, int], list[str]]:
    """SQL statements of one case's requests (page, image, submit; in the browser flow the answer before
    brought the page), counted on the app's engine in this process; and the errors. The reader reads
    `warmup` + 1 cases uncounted first: with --warmup at least --practice (the defaults), the counted one
    is mid-study, not the first after the practice cases, which follows the feedback as a page."""
    from sqlalchemy import event

    with warnings.catch_warnings():  # Starlette's advice to move to httpx2 is not this benchmark's concern
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from app.persistence.db import get_engine
    from app.web.main import create_app

    counts = {"page": 0, "image": 0, "submit": 0}
    current: list[str] = [""]

    def on_execute(*_args: object) -> None:
        if current[0] in counts:
            counts[current[0]] += 1

    def mark(what: str) -> None:
        current[0] = what

    out = Timings()
    # In-process, the app shares this process's cached engine (the benchmark's DATABASE_URL), so a
    # listener on it sees every statement; the served apps run elsewhere and are not counted.
    engine = get_engine()
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        with TestClient(create_app(), follow_redirects=False) as client:
            if _sign_in(client, email, out):
                one = Reader(client, study_id, browser=browser)
                one.read(warmup + 1, random.Random(1), out)
                one.read(1, random.Random(2), out, on=mark)
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    if len(out.post) != warmup + 2 and not out.errors:
        out.errors.append("query count: the reader ran out of cases")
    return counts, out.errors


# What brings a case and its image in each flow, as the reports name their timing: in the browser flow the
# answer brings the next case (its time counts as the answer's and as the page's), in the form flow a page.
CASE_LABEL = {"browser": "answer+image", "form": "page+image"}


def add_flow_option(parser: argparse.ArgumentParser) -> None:
    """--flow: how the simulated readers answer (Reader)."""
    parser.add_argument(
        "--flow",
        choices=("browser", "form"),
        default="browser",
        help="browser: an htmx answer brings the next case (answer + image a case), as the reading room's "
        "page reads; form: the answer's redirect, then the case page (three requests a case), as without "
        "JavaScript and as runs before 2026-12-07 measured.",
    )
