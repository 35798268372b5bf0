"""Next-case page plus image fetch, p50/p95/p99, with 20 concurrent simulated readers on a demo-like study.

The app runs under uvicorn in its own process (one worker, loopback), as in production. Each simulated
reader is a thread with its own httpx.Client (its own cookie jar): sign in, then loop GET case page ->
GET its image -> POST an answer, timing "case page + image". Baselines in the same run: the same loop
with one reader, and a static file under the same concurrency.

    .venv/bin/python benchmarks/bench_reading.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from _setup import (
    PASSWORD,
    BenchEnv,
    add_database_option,
    bench_database,
    csrf_of,
    login,
    percentile,
    phantom_set,
    serve,
)
from tqdm import tqdm

CASE_ID = re.compile(r'name="case_id" value="([^"]+)"')
STATIC = "/static/css/app.css"


@dataclass
class Timings:
    """Milliseconds per iteration of one phase, merged over its readers."""

    page_image: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def merge(self, other: Timings) -> None:
        """Add another reader's samples."""
        self.page_image += other.page_image
        self.post += other.post
        self.errors += other.errors


def seed(env: BenchEnv, args: argparse.Namespace) -> tuple[int, list[str]]:
    """Two phantom sets, readers with their intake done, one launched study; returns (study id, emails)."""
    from app.core.config import get_settings
    from app.domain import studies, users
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    store = BlobStore(get_settings().images_dir)
    with session_scope() as session:
        admin = users.create_user(session, email="admin@bench.local", name="Bench Admin", role="admin")
        readers = []
        # The solo baseline reads through accounts of its own, one after another.
        for i in tqdm(
            range(args.readers + args.solo_readers), desc="reader accounts", unit="user", leave=False
        ):
            u = users.create_user(
                session,
                email=f"reader{i:02d}@bench.local",
                name=f"Reader {i}",
                role="reader",
                password=PASSWORD,
            )
            users.save_intake(
                session, u, years_experience=5 + i % 20, specialty="Radiology", board_certified=True
            )
            readers.append(u)
        sets = [
            phantom_set(
                session, store, name=f"Bench {kind}", kind=kind, n=args.images, size=args.size, seed=s
            )
            for kind, s in (("real", 0), ("synthetic", 1))
        ]
        # Demo-like options: practice cases, findings checklist, free text and giveaway click.
        design = studies.StudyDesign(
            title="Bench study: real or synthetic?",
            image_set_ids=[s.id for s in sets],
            n_cases=args.cases,
            practice_cases=args.practice,
            resolution=args.size,
            ask_findings=True,
            ask_free_text=True,
            ask_click=True,
            seed=2021,
            reader_ids=[r.id for r in readers],
        )
        study = studies.create_study(session, store, design, actor_id=admin.id)
        studies.launch(session, store, study.id, actor_id=admin.id)
        return study.id, [r.email for r in readers]


def read_cases(client: httpx.Client, study_id: int, n: int, rng: random.Random, out: Timings) -> None:
    """Up to n iterations of case page -> image -> answer; stops early when the reader is done."""
    for _ in range(n):
        t0 = time.perf_counter()
        page = client.get(f"/read/{study_id}/case")
        if page.status_code == 303:  # the reader has finished the study
            return
        m = CASE_ID.search(page.text) if page.status_code == 200 else None
        if m is None:
            out.errors.append(f"case page HTTP {page.status_code}")
            return
        img = client.get(f"/img/{m.group(1)}")
        t1 = time.perf_counter()
        if img.status_code != 200 or not img.content.startswith(b"\x89PNG"):
            out.errors.append(f"image HTTP {img.status_code}")
            return
        out.page_image.append((t1 - t0) * 1000)
        form = {
            "csrf_token": csrf_of(page.text),
            "case_id": m.group(1),
            "client_token": uuid.uuid4().hex,
            "verdict": rng.choice(("real", "synthetic")),
            "confidence": str(rng.randint(1, 5)),
        }
        t2 = time.perf_counter()
        resp = client.post(f"/read/{study_id}/case", data=form)
        out.post.append((time.perf_counter() - t2) * 1000)
        if resp.status_code not in (200, 303):  # 303 to the next case; 200 is practice feedback
            out.errors.append(f"submit HTTP {resp.status_code}")
            return


def run_readers(base: str, study_id: int, emails: list[str], n: int, *, timeout_s: float) -> Timings:
    """All readers sign in, wait at a barrier, then read n cases each in parallel threads."""
    total = Timings()
    per_reader = [Timings() for _ in emails]
    barrier = threading.Barrier(len(emails) + 1)

    def reader(i: int) -> None:
        with httpx.Client(base_url=base, timeout=timeout_s) as client:
            try:
                login(client, emails[i])
            finally:
                barrier.wait()  # never leave the others waiting, even when sign-in failed
            read_cases(client, study_id, n, random.Random(i), per_reader[i])

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(len(emails))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join(timeout=timeout_s * n * 3)
    total.wall_s = time.perf_counter() - start
    for t in per_reader:
        total.merge(t)
    return total


def run_static(base: str, clients: int, n: int, *, timeout_s: float) -> list[float]:
    """Milliseconds per GET of a static file, with `clients` concurrent connections of n requests each."""
    samples: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients)

    def worker(i: int) -> None:
        with httpx.Client(base_url=base, timeout=timeout_s) as client:
            client.get(STATIC)  # open the keep-alive connection outside the timing
            barrier.wait()
            for _ in range(n):
                t0 = time.perf_counter()
                r = client.get(STATIC)
                samples[i].append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout_s * n)
    return [x for s in samples for x in s]


def _row(name: str, xs: list[float], per_iter: int, rate: float | None = None) -> str:
    p = [percentile(xs, q) for q in (50, 95, 99)]
    rate_s = f"{rate:8.1f}" if rate is not None else " " * 8
    return f"  {name:<30}{len(xs):>6}{len(xs) * per_iter:>9}{p[0]:>9.1f}{p[1]:>9.1f}{p[2]:>9.1f}{rate_s}"


def report(
    env: BenchEnv,
    args: argparse.Namespace,
    solo: Timings,
    crowd: Timings,
    static_1: list[float],
    static_n: list[float],
) -> None:
    """Print the figures and the ratios."""
    n = args.readers
    p50 = {
        "solo": percentile(solo.page_image, 50),
        "crowd": percentile(crowd.page_image, 50),
        "static_1": percentile(static_1, 50),
        "static_n": percentile(static_n, 50),
    }
    print(f"\nbench_reading: {env.label}; uvicorn, 1 worker, loopback")
    n_all = n + args.solo_readers
    print(f"  study: {args.cases} cases + {args.practice} practice, {args.size} px, {n_all} readers")
    print(f"  {'phase':<30}{'iters':>6}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'cases/s':>8}")
    print(_row("page+image, 1 reader", solo.page_image, 2, len(solo.page_image) / solo.wall_s))
    print(_row(f"page+image, {n} readers", crowd.page_image, 2, len(crowd.page_image) / crowd.wall_s))
    print(_row("answer POST, 1 reader", solo.post, 1))
    print(_row(f"answer POST, {n} readers", crowd.post, 1))
    print(_row("static css, 1 client", static_1, 1))
    print(_row(f"static css, {n} clients", static_n, 1))
    print(f"  ratio p50 page+image, {n} readers / 1 reader:   {p50['crowd'] / p50['solo']:.2f}")
    print(f"  ratio p50 page+image / static css, {n} concurrent: {p50['crowd'] / p50['static_n']:.2f}")
    print(f"  ratio p50 page+image / static css, 1 client:     {p50['solo'] / p50['static_1']:.2f}")
    errors = solo.errors + crowd.errors
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))


def main() -> None:
    """Seed, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--readers", type=int, default=20, help="Concurrent simulated readers.")
    parser.add_argument("--images", type=int, default=60, help="Phantoms per image set.")
    parser.add_argument("--size", type=int, default=256, help="Image side length (px).")
    parser.add_argument("--cases", type=int, default=40, help="Main cases of the study.")
    parser.add_argument("--practice", type=int, default=2, help="Practice cases of the study.")
    parser.add_argument(
        "--solo-readers", type=int, default=3, help="Accounts the 1-reader baseline reads in turn."
    )
    parser.add_argument("--per-reader", type=int, default=30, help="Timed cases per reader.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed cases the solo reader reads first.")
    parser.add_argument("--static", type=int, default=50, help="Static-file requests per client.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout (s).")
    args = parser.parse_args()
    if args.warmup + args.per_reader > args.cases + args.practice:
        parser.error("--warmup + --per-reader exceeds the cases each reader has")

    with bench_database(args.database_url) as env:
        t0 = time.perf_counter()
        study_id, emails = seed(env, args)
        print(f"seeded in {time.perf_counter() - t0:.1f} s")
        with serve(env) as (base, _proc):
            crowd, solo = emails[: args.readers], Timings()
            for k, email in enumerate(emails[args.readers :]):
                with httpx.Client(base_url=base, timeout=args.timeout) as client:
                    login(client, email)
                    # Untimed first cases: template compilation, pool connections, first-image caches.
                    read_cases(client, study_id, args.warmup, random.Random(-k), Timings())
                    start = time.perf_counter()
                    read_cases(client, study_id, args.per_reader, random.Random(k), solo)
                    solo.wall_s += time.perf_counter() - start
            print(f"running {args.readers} concurrent readers x {args.per_reader} cases ...")
            many = run_readers(base, study_id, crowd, args.per_reader, timeout_s=args.timeout)
            st1 = run_static(base, 1, args.static, timeout_s=args.timeout)
            st20 = run_static(base, args.readers, args.static, timeout_s=args.timeout)
        report(env, args, solo, many, st1, st20)


if __name__ == "__main__":
    main()
