"""One reader's next case on two versions of the code, paired: this checkout against another (a worktree of
the commit to compare), each served by its own `cxrlab serve` on one throw-away database.

This machine's speed drifts by a factor of two within the hour (the same test run took 90 to 123 CPU
seconds), so two bench_reading runs one after the other can differ more than the code does. Here a reader
per version reads cases alternately (A B, B A, A B, ...), each case page + image + answer through its own
server, so any drift falls on both alike. The figure to read is the ratio of the two p50s and the median
of the paired differences, not the milliseconds themselves.

    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/bench_paired.py --other /tmp/base --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import httpx
from _readers import Timings, read_cases
from _setup import (
    ROOT,
    add_database_option,
    bench_database,
    free_port,
    login,
    percentile,
    start_server,
    stop_server,
)
from bench_reading import seed
from tqdm import tqdm

# The request kinds each version is timed on, as (heading, Timings field).
KINDS = (("page+image", "page_image"), ("page", "page"), ("image", "image"), ("answer", "post"))


def main() -> None:
    """Seed once, serve both checkouts, read alternately, print both versions and their paired difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--other", type=Path, required=True, help="The checkout to compare with this one.")
    parser.add_argument("--pairs", type=int, default=250, help="Timed cases per version.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed cases each reader reads first.")
    parser.add_argument("--images", type=int, default=200, help="Phantoms per image set.")
    parser.add_argument("--size", type=int, default=256, help="Image side length (px).")
    parser.add_argument("--answered", type=int, default=0, help="Cases each reader answered before.")
    args = parser.parse_args()
    if not (args.other / "app" / "web" / "main.py").exists():
        parser.error(f"{args.other} is not a checkout of this project")
    cases = args.answered + args.warmup + args.pairs
    if cases > 2 * args.images:  # half real, half synthetic
        parser.error(f"each reader needs {cases} cases; --images must be at least half that")
    study = argparse.Namespace(
        readers=2,
        solo_readers=0,
        images=args.images,
        size=args.size,
        cases=cases,
        practice=0,
        answered=args.answered,
    )
    versions = {"this checkout": ROOT, f"other ({args.other.name})": args.other.resolve()}
    with bench_database(args.database_url) as env:
        study_id, emails = seed(env, study)
        servers, clients = [], []
        try:
            for root, email in zip(versions.values(), emails, strict=True):
                port = free_port()
                servers.append(start_server(env, port, root=root))
                clients.append(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0))
                login(clients[-1], email)
            timings = [Timings(), Timings()]
            for k, client in enumerate(clients):
                read_cases(client, study_id, args.warmup, random.Random(-k), Timings())
            for i in tqdm(range(args.pairs), desc="pairs", unit="pair"):
                for k in (0, 1) if i % 2 == 0 else (1, 0):  # each version goes first half the time
                    read_cases(clients[k], study_id, 1, random.Random(i), timings[k])
        finally:
            for client in clients:
                client.close()
            for proc in servers:
                stop_server(proc)
    errors = timings[0].errors + timings[1].errors
    print(f"\n{args.pairs} cases per version, read alternately; {args.size} px; {env.label}")
    print(f"  this: this checkout; other: {args.other}")
    heads = ("this p50", "p95", "other p50", "p95", "this/other", "diff. med.", "faster")
    print(f"  {'(ms)':<12}" + "".join(f"{h:>11}" for h in heads))
    for heading, name in KINDS:
        this, other = (getattr(t, name) for t in timings)
        # Paired: the i-th case of each version was read back to back.
        diff = [b - a for a, b in zip(this, other, strict=False)]
        cols = [percentile(this, 50), percentile(this, 95), percentile(other, 50), percentile(other, 95)]
        ratio = statistics.median(this) / statistics.median(other)
        faster = sum(d > 0 for d in diff) / len(diff)
        print(
            f"  {heading:<12}"
            + "".join(f"{x:>11.2f}" for x in cols)
            + f"{ratio:>11.3f}{statistics.median(diff):>+11.2f}{faster:>11.0%}"
        )
    print("  this/other: ratio of the p50s; diff. med.: median of (other - this) over the pairs;")
    print("  faster: the share of pairs in which this checkout was faster.")
    if errors:
        print(f"  errors: {errors[:5]}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
