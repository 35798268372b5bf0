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


def _row(name: str, t: Timings) -> str:
    cols = [percentile(xs, q) for xs in (t.page_image, t.post) for q in (50, 95)]
    return f"  {name:<28}" + "".join(f"{x:>12.2f}" for x in cols)


def main() -> None:
    """Seed once, serve both checkouts, read alternately, print both versions and their paired difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--other", type=Path, required=True, help="The checkout to compare with this one.")
    parser.add_argument("--pairs", type=int, default=250, help="Timed cases per version.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed cases each reader reads first.")
    parser.add_argument("--images", type=int, default=200, help="Phantoms per image set.")
    parser.add_argument("--size", type=int, default=256, help="Image side length (px).")
    args = parser.parse_args()
    if not (args.other / "app" / "web" / "main.py").exists():
        parser.error(f"{args.other} is not a checkout of this project")
    cases = args.warmup + args.pairs
    if cases > 2 * args.images:  # half real, half synthetic
        parser.error(f"each reader needs {cases} cases; --images must be at least half that")
    study = argparse.Namespace(
        readers=2, solo_readers=0, images=args.images, size=args.size, cases=cases, practice=0
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
    heads = ("page+image", "p95", "answer", "p95")
    print(f"  {'version (p50, p95 in ms)':<28}" + "".join(f"{h:>12}" for h in heads))
    for name, t in zip(versions, timings, strict=True):
        print(_row(name, t))
    this, other = (t.page_image for t in timings)
    diff = [b - a for a, b in zip(this, other, strict=False)]
    print(f"  page+image p50, this / other: {statistics.median(this) / statistics.median(other):.3f}")
    print(f"  paired difference (other - this), median: {statistics.median(diff):+.2f} ms")
    print(f"  pairs in which this checkout was faster: {sum(d > 0 for d in diff) / len(diff):.0%}")
    if errors:
        print(f"  errors: {errors[:5]}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
