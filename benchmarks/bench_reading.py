"""Reading at clinic scale: next-case page plus image and the answer, p50/p95/p99/max, from one reader to
a crowd of readers who look at each film, on 1, 2 and N uvicorn worker processes.

The app runs under uvicorn in its own process(es) on loopback, as in production. Each simulated reader is
a thread with its own keep-alive client and cookie jar (benchmarks/_client.py): sign in, then read as the
reading room's page does (--flow browser): GET the image -> POST the answer, whose response is the next
case, timing "answer + image" (what brings a case and its film) and the answer POST alone. With --flow
form, as without JavaScript and as runs before 2026-12-07: GET case page -> GET its image -> POST an
answer (a 303), timing "page + image". Phases, all in one run on one study, each with reader accounts of
its own (an account reads a case once):

- solo: one reader at a time on one process; the latency floor, and the baseline of every ratio.
- saturation: --readers readers who never pause, on 1, 2 and --workers processes; cases/s per process
  count against 1 process, and a case's requests against a static file of the same PNG bytes under the same
  concurrency (what serving the bytes costs without the app's work).
- crowd: --crowd readers who think 2-8 s (uniform) between receiving a case and answering, arriving
  spread over the first think interval, on --workers processes; the latency a clinic's readers feel.
  A probe thread measures how late the load generator itself wakes, to tell its delay from the server's.
- query count: the SQL statements of one case's requests, counted in-process.

--answered N starts every reader N cases into the study (their answers stored in bulk before the clock), as
a clinic's readers are mid-study most of the time; the second command below is a real study's size and depth.

The issue's aims are printed beside the figures to compare; none is asserted (timings vary with the
machine). The script exits 1 when any request failed.

    .venv/bin/python benchmarks/bench_reading.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/bench_reading.py --cases 300 --images 151 --answered 150 --database-url ...
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
from contextlib import closing
from typing import TYPE_CHECKING

from _client import CLIENTS, add_client_option
from _readers import (
    CASE_LABEL,
    Reader,
    Timings,
    add_flow_option,
    count_queries,
    run_crowd,
    run_readers,
    run_static,
)
from _setup import (
    PASSWORD,
    ROOT,
    BenchEnv,
    CpuMeter,
    add_database_option,
    bench_database,
    login,
    percentile,
    phantom_set,
    serve,
)
from tqdm import tqdm

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Timings", "run_readers", "seed"]  # bench_busy_worker and bench_durability borrow these


def seed(env: BenchEnv, args: argparse.Namespace, *, extra: int = 0) -> tuple[int, list[str]]:
    """Two phantom sets, readers with their intake done, one launched study; returns (study id, emails):
    args.readers accounts, then args.solo_readers, then `extra` more."""
    from app.core.config import get_settings
    from app.domain import studies, users
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope

    store = BlobStore(get_settings().images_dir)
    with session_scope() as session:
        admin = users.create_user(session, email="admin@bench.local", name="Bench Admin", role="admin")
        readers = []
        n = args.readers + args.solo_readers + extra
        for i in tqdm(range(n), desc="reader accounts", unit="user", leave=False):
            # One argon2 hash serves every account (it carries its own salt and parameters, so it verifies
            # PASSWORD whoever holds it): hashing per account costs tens of ms each, minutes for a crowd.
            u = users.create_user(
                session,
                email=f"reader{i:03d}@bench.local",
                name=f"Reader {i}",
                role="reader",
                password=PASSWORD if not readers else None,
            )
            if readers:
                u.password_hash = readers[0].password_hash
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
        answered_before(session, study.id, getattr(args, "answered", 0))
        return study.id, [r.email for r in readers]


def answered_before(session: Session, study_id: int, depth: int) -> None:
    """Every reader's first `depth` cases answered, in one INSERT of readings as the submit stores them
    (without its audit events or the cases' shown times): deep into a study is where a reader spends most
    of it, and the reading room's lookups must not grow with the depth
    (tests/integration/test_reading_depth.py). Through the submit, 200 readers x 150 cases would take
    minutes to seed."""
    from sqlalchemy import func, insert, literal, select, type_coerce
    from sqlalchemy.dialects.postgresql import JSONB

    from app.persistence.models import Case, ReaderCase, Reading

    if depth <= 0:
        return
    columns = {
        "study_id": ReaderCase.study_id,
        "case_id": ReaderCase.case_id,
        "reader_id": ReaderCase.reader_id,
        "presentation": ReaderCase.presentation,
        "revision": literal(0),
        "client_token": func.concat("bench-", ReaderCase.id),
        "verdict": literal("real"),
        "confidence": literal(3),
        "findings": type_coerce([], JSONB),
        "position": ReaderCase.position,
        "is_practice": Case.is_practice,
        "shown_at": func.now(),
    }
    answers = (
        select(*columns.values())
        .join(Case, Case.id == ReaderCase.case_id)
        .where(ReaderCase.study_id == study_id, ReaderCase.position < depth)
    )
    session.execute(insert(Reading).from_select(list(columns), answers))


def case_png(study_id: int) -> bytes:
    """The PNG bytes readers receive for one of the study's cases, from the blob store."""
    from sqlalchemy import select

    from app.core.config import get_settings
    from app.persistence.blobs import BlobStore
    from app.persistence.db import session_scope
    from app.persistence.models import Case

    with session_scope() as session:
        sha = session.scalar(select(Case.sha256).where(Case.study_id == study_id).order_by(Case.id).limit(1))
    return BlobStore(get_settings().images_dir).get(sha)


def run_solo(base: str, study_id: int, emails: list[str], args: argparse.Namespace) -> Timings:
    """One reader at a time: each account reads its warm-up cases untimed, then args.per_reader timed."""
    solo = Timings()
    for k, email in enumerate(emails):
        with closing(CLIENTS[args.client](base, args.timeout)) as client:
            login(client, email)
            one = Reader(client, study_id, browser=args.flow == "browser")
            # Untimed first cases: template compilation, pool connections, first-image caches.
            one.read(args.warmup, random.Random(-k), Timings())
            start = time.perf_counter()
            one.read(args.per_reader, random.Random(k), solo)
            solo.wall_s += time.perf_counter() - start
    return solo


def _row(name: str, xs: list[float], per_iter: int, rate: float | None = None) -> str:
    p = [percentile(xs, q) for q in (50, 95, 99, 100)]
    rate_s = f"{rate:8.1f}" if rate is not None else ""
    cells = f"{p[0]:>9.1f}{p[1]:>9.1f}{p[2]:>9.1f}{p[3]:>9.1f}"
    return f"  {name:<46}{len(xs):>6}{len(xs) * per_iter:>9}{cells}{rate_s}"


def _procs(p: int) -> str:
    return f"{p} process" + ("es" if p > 1 else "")


def print_ceiling(sat: dict[int, Timings], base_rate: float) -> None:
    """What the machine's cores allow the saturation at 2 processes, from the CPU each case cost there.

    Here the app shares the cores with Postgres and the load generator, and every case costs all three.
    With C cores and c seconds of CPU a case in all, no number of processes serves more than C / c cases a
    second; over the rate of one process (bound by its GIL), that is the most the processes' ratio can be.
    """
    two = sat.get(2)
    if two is None or not two.cpu or not two.rate:
        return
    cores = os.cpu_count() or 1
    per_case = {k: 1000 * share * cores / two.rate for k, share in two.cpu.items()}  # CPU ms a case
    ceiling = 1000 * cores / sum(per_case.values())
    parts = " + ".join(f"{k} {v:.1f}" for k, v in per_case.items())
    print(f"  CPU a case at 2 processes: {parts} = {sum(per_case.values()):.1f} ms; {cores} cores allow at")
    print(
        f"  most {ceiling:.1f} cases/s, {ceiling / base_rate:.2f} x 1 process; 2 processes reached "
        f"{two.rate:.1f} cases/s, {100 * two.rate / ceiling:.0f} % of that"
    )


def report(env: BenchEnv, args: argparse.Namespace, r: dict) -> list[str]:
    """Print the figures, the ratios and the issue's aims; returns every error."""
    n, solo, sat, crowd = args.readers, r["solo"], r["sat"], r["crowd"]
    static_1, static_n = r["static_1"], r["static_n"]
    print(
        f"\nbench_reading: {env.label}; uvicorn on loopback, {os.cpu_count()} CPUs; {args.client} client, "
        f"{args.flow} flow"
    )
    case = CASE_LABEL[args.flow]
    print(
        f"  study: {args.cases} cases + {args.practice} practice, {args.size} px, {r['accounts']} reader "
        f"accounts, each {args.answered} cases in before the clock; static baseline: the same PNG "
        f"({len(r['png']) / 1024:.1f} KiB) under /static"
    )
    head = f"{'iters':>6}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'cases/s':>8}"
    print(f"  {'phase':<46}{head}")
    print(_row(f"{case}, 1 reader, 1 process", solo.page_image, 2, solo.rate))
    print(_row("answer POST, 1 reader, 1 process", solo.post, 1))
    print(_row("static image, 1 client, 1 process", static_1, 1))
    for p, t in sat.items():
        print(_row(f"{case}, {n} readers, {_procs(p)}", t.page_image, 2, t.rate))
        print(_row(f"answer POST, {n} readers, {_procs(p)}", t.post, 1))
        print(_row(f"static image, {n} clients, {_procs(p)}", static_n[p], 1))
    w, think = args.workers, f"think {args.think_min:g}-{args.think_max:g} s"
    print(_row(f"{case}, {args.crowd} readers, {think}, {w} pr.", crowd.page_image, 2, crowd.rate))
    print(_row(f"answer POST, {args.crowd} readers, {think}, {w} pr.", crowd.post, 1))
    print(_row("load generator's own wake-up lag, crowd", crowd.client_lag, 1))

    print(f"\n  saturation, {n} readers who never pause:")
    cols = f"{'processes':>9}{'cases/s':>9}{'x 1 process':>13}{'static p50 ms':>15}"
    print(f"    {cols}   {case} / static, p50")
    base_rate = sat[1].rate
    for p, t in sat.items():
        st = percentile(static_n[p], 50)
        ratio = percentile(t.page_image, 50) / st
        print(f"    {p:>9}{t.rate:>9.1f}{t.rate / base_rate:>13.2f}{st:>15.1f}   {ratio:.2f}")
    solo_p50 = percentile(solo.page_image, 50)
    ratio = solo_p50 / percentile(static_1, 50)
    print(f"  ratio p50 {case} / static image, 1 reader, 1 process: {ratio:.2f}")
    offered = args.crowd / ((args.think_min + args.think_max) / 2)
    print(
        f"  crowd: {args.crowd} readers x {args.crowd_cases} cases; offered at most {offered:.1f} cases/s "
        f"(readers / mean think), achieved {crowd.rate:.1f} cases/s over {crowd.wall_s:.1f} s"
    )
    print(
        "  CPU while the clock ran: load generator / app / Postgres as shares of all cores; each app process"
    )
    print("  as a share of one core (near 100 %: bound by its GIL) with its clients' connections (cl.); and")
    print("  the Postgres connections the app opened meanwhile (none, once its pool holds what it needs):")
    for name, t in [*((f"{n} non-stop readers, {_procs(p)}", t) for p, t in sat.items()), ("crowd", crowd)]:
        split = " / ".join(f"{100 * v:3.0f} %" for v in t.cpu.values())
        procs = ", ".join(f"{100 * v:.0f} % ({c} cl.)" for v, c in zip(t.app_cpu, t.app_clients, strict=True))
        print(f"    {name:<34}{split}   app processes: {procs}; connections opened: {t.connections_opened}")
    print_ceiling(sat, base_rate)
    q = r["queries"]
    if args.flow == "browser":  # the answer brings the next case: no page request
        print(f"  queries per case: answer (bringing the next case) {q['submit']}, image {q['image']}")
    else:
        print(f"  queries per case: page {q['page']}, image {q['image']}, submit {q['submit']}")

    errors = solo.errors + crowd.errors + r["errors"] + [e for t in sat.values() for e in t.errors]
    p99 = percentile(crowd.page_image, 99)
    speedup = sat[2].rate / base_rate
    print('  aims (issue "Reading at clinic scale"), to compare; not asserted:')
    print(f"    crowd p99 {case} <= 50 ms, no errors:  {p99:.1f} ms, {len(crowd.errors)} errors")
    print(f"    2 processes >= 1.7 x 1 process (cases/s):  {speedup:.2f} x")
    print(f"    1 reader p50 {case} <= 6 ms:           {solo_p50:.1f} ms")
    print(f"  errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    return errors


def main() -> None:
    """Seed, serve at each process count, measure, print; exit 1 if any request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--readers", type=int, default=20, help="Non-stop readers of the saturation phase.")
    parser.add_argument("--images", type=int, default=60, help="Phantoms per image set.")
    parser.add_argument("--size", type=int, default=256, help="Image side length (px).")
    parser.add_argument("--cases", type=int, default=40, help="Main cases of the study.")
    parser.add_argument("--practice", type=int, default=2, help="Practice cases of the study.")
    parser.add_argument(
        "--answered", type=int, default=0, help="Cases every reader has answered before the clock starts."
    )
    parser.add_argument(
        "--solo-readers", type=int, default=3, help="Accounts the 1-reader baseline reads in turn."
    )
    parser.add_argument("--per-reader", type=int, default=30, help="Timed cases per solo/saturation reader.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed cases each reader reads first.")
    parser.add_argument("--static", type=int, default=50, help="Static-file requests per client.")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Most uvicorn worker processes."
    )
    parser.add_argument("--crowd", type=int, default=200, help="Readers of the crowd phase.")
    parser.add_argument("--crowd-cases", type=int, default=10, help="Cases each crowd reader reads.")
    parser.add_argument("--think-min", type=float, default=2.0, help="Shortest look at a film (s).")
    parser.add_argument("--think-max", type=float, default=8.0, help="Longest look at a film (s).")
    parser.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout (s).")
    add_client_option(parser)
    add_flow_option(parser)
    args = parser.parse_args()
    need = args.answered + max(args.warmup + args.per_reader, args.crowd_cases, args.warmup + 2)
    if need > args.cases + args.practice:
        parser.error(f"a reader needs {need} cases; the study has {args.cases + args.practice}")
    if not 0 <= args.think_min <= args.think_max or args.workers < 1:
        parser.error("need 0 <= --think-min <= --think-max and --workers >= 1")
    counts = sorted({1, 2, args.workers})
    connect, browser = CLIENTS[args.client], args.flow == "browser"

    r: dict = {"sat": {}, "static_n": {}, "errors": []}
    with bench_database(args.database_url) as env:
        t0 = time.perf_counter()
        # Accounts: the saturation's first block, the solo readers, the other blocks, the crowd, one probe.
        extra = args.readers * (len(counts) - 1) + args.crowd + 1
        study_id, emails = seed(env, args, extra=extra)
        print(f"seeded in {time.perf_counter() - t0:.1f} s")
        solo_emails = emails[args.readers : args.readers + args.solo_readers]
        rest = emails[: args.readers] + emails[args.readers + args.solo_readers :]
        blocks = {p: rest[k * args.readers : (k + 1) * args.readers] for k, p in enumerate(counts)}
        crowd_emails, probe = rest[len(counts) * args.readers : -1], rest[-1]
        r["accounts"], r["png"] = len(emails), case_png(study_id)
        # StaticFiles serves only ROOT/static, so the copy goes there under a name of its own, and goes.
        static_file = ROOT / "static" / f"bench-case-{secrets.token_hex(4)}.png"
        static_path = f"/static/{static_file.name}"
        try:
            static_file.write_bytes(r["png"])
            r["queries"], errors = count_queries(study_id, probe, warmup=args.warmup, browser=browser)
            r["errors"] += errors
            for p in counts:
                with serve(env, workers=p) as (base, proc):
                    if p == 1:
                        r["solo"] = run_solo(base, study_id, solo_emails, args)
                        r["static_1"], errors = run_static(
                            base, static_path, 1, args.static, timeout_s=args.timeout, connect=connect
                        )
                        r["errors"] += errors
                    print(f"{_procs(p)}: {args.readers} non-stop readers x {args.per_reader} cases ...")
                    r["sat"][p] = run_readers(
                        base,
                        study_id,
                        blocks[p],
                        args.per_reader,
                        timeout_s=args.timeout,
                        warmup=args.warmup,
                        meter=CpuMeter(proc.pid, env.libpq_url),
                        connect=connect,
                        browser=browser,
                    )
                    r["static_n"][p], errors = run_static(
                        base, static_path, args.readers, args.static, timeout_s=args.timeout, connect=connect
                    )
                    r["errors"] += errors
                    if p == args.workers:
                        print(f"{_procs(p)}: {args.crowd} readers x {args.crowd_cases} cases, thinking ...")
                        think = (args.think_min, args.think_max)
                        r["crowd"] = run_crowd(
                            base,
                            study_id,
                            crowd_emails,
                            args.crowd_cases,
                            think=think,
                            timeout_s=args.timeout,
                            meter=CpuMeter(proc.pid, env.libpq_url),
                            connect=connect,
                            browser=browser,
                        )
        finally:
            static_file.unlink(missing_ok=True)
    errors = report(env, args, r)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
