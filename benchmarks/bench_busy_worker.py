"""Readers' latency while a job worker trains a GAN on the same machine, against the same app idle.

The web process does no ML work: jobs run in `cxrlab worker` processes. This measures what readers feel
when a worker shares the machine (here: the same cores) with the app. Phase 1: N readers read with no
worker. Phase 2: a worker trains a PGGAN (a train_gan run started through the queue) while N other
readers read. Same study, same app process, same run.

    .venv/bin/python benchmarks/bench_busy_worker.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import psutil
from _client import CLIENTS, add_client_option
from _readers import CASE_LABEL, add_flow_option
from _setup import ROOT, add_database_option, bench_database, percentile, serve
from bench_reading import Timings, run_readers, seed


def start_training(real_set_name: str) -> int:
    """A train_gan run on the bench's real set, queued through the same path as the web form."""
    from sqlalchemy import select

    from app.domain import runs
    from app.jobs import queue
    from app.persistence.db import session_scope
    from app.persistence.models import ImageSet, User

    with session_scope() as s:
        admin = s.scalar(select(User).where(User.role == "admin"))
        image_set = s.scalar(select(ImageSet).where(ImageSet.name == real_set_name))
        config = {"image_set_id": image_set.id, "model_name": "bench-busy", "resolution": 64}
        config |= {"final_stable_images": 10_000_000, "batch_sizes": "16,16,16,16,16"}
        run, _ = runs.create(s, "train_gan", config, actor_id=admin.id, request_key=None)
        queue.enqueue(s, run)
        return run.id


def wait_running(run_id: int, timeout_s: float = 120) -> None:
    """Until the worker has claimed the run and reported progress."""
    from app.persistence.db import session_scope
    from app.persistence.models import Run

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with session_scope() as s:
            run = s.get(Run, run_id)
            if run.status == "running" and run.progress > 0:
                return
            if run.status not in ("queued", "running"):
                raise RuntimeError(f"the training run ended {run.status}: {run.error}")
        time.sleep(0.5)
    raise RuntimeError("the worker did not start training in time")


def row(name: str, t: Timings) -> str:
    """One line of the table."""
    xs = t.page_image
    p = [percentile(xs, q) for q in (50, 95, 99)]
    return f"  {name:<34}{len(xs):>6}{p[0]:>9.1f}{p[1]:>9.1f}{p[2]:>9.1f}{len(xs) / t.wall_s:>9.1f}"


def main() -> None:
    """Seed, serve, read idle, start a training worker, read busy, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--readers", type=int, default=5, help="Concurrent readers per phase.")
    parser.add_argument("--per-reader", type=int, default=30, help="Timed cases per reader.")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--size", type=int, default=64, help="Image size; the GAN trains at this size.")
    parser.add_argument("--timeout", type=float, default=30.0)
    add_client_option(parser)
    add_flow_option(parser)
    args = parser.parse_args()
    connect, browser = CLIENTS[args.client], args.flow == "browser"
    seed_args = argparse.Namespace(
        readers=2 * args.readers,
        solo_readers=0,
        images=args.images,
        size=args.size,
        cases=args.per_reader,
        practice=0,
    )
    with bench_database(args.database_url) as env:
        study_id, emails = seed(env, seed_args)
        idle_emails, busy_emails = emails[: args.readers], emails[args.readers :]
        with serve(env) as (base, _proc):
            idle = run_readers(
                base, study_id, idle_emails, args.per_reader, timeout_s=args.timeout, connect=connect,
                browser=browser,
            )  # fmt: skip
            cmd = [sys.executable, "-c", "from app.cli.main import main; main()", "worker"]
            worker = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env.server_env})
            try:
                run_id = start_training("Bench real")
                wait_running(run_id)
                probe = psutil.Process(worker.pid)
                probe.cpu_percent()
                busy = run_readers(
                    base, study_id, busy_emails, args.per_reader, timeout_s=args.timeout, connect=connect,
                    browser=browser,
                )  # fmt: skip
                worker_cpu = probe.cpu_percent()
            finally:
                worker.terminate()
                worker.wait(60)
    print(
        f"\nbench_busy_worker: {env.label}; uvicorn, 1 worker process; {psutil.cpu_count()} CPUs; "
        f"{args.flow} flow"
    )
    case = CASE_LABEL[args.flow]
    print(f"  {args.readers} concurrent readers, {args.per_reader} cases each, {args.size} px")
    print(f"  {'phase':<34}{'iters':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'cases/s':>9}")
    print(row(f"{case}, no worker", idle))
    print(row(f"{case}, worker training", busy))
    print(f"  worker CPU while readers read: {worker_cpu:.0f} % (100 % = one core)")
    ratio = percentile(busy.page_image, 50) / percentile(idle.page_image, 50)
    print(f"  ratio p50 busy / idle: {ratio:.2f}")
    print(f"  errors: {len(idle.errors) + len(busy.errors)}")


if __name__ == "__main__":
    main()
