"""One reader's next case on two versions of the code, paired: this checkout against another (a worktree of
the commit to compare), each served by its own `cxrlab serve` on one throw-away database.

This machine's speed drifts by a factor of two within the hour (the same test run took 90 to 123 CPU
seconds), so two bench_reading runs one after the other can differ more than the code does. Here two
readers, one per version, read cases alternately (A B, B A, A B, ...), each case page + image + answer
through its version's server, so any drift falls on both alike. The pairs are read in blocks, each with
both servers started afresh in swapped order and the readers swapped between the versions. The figure to
read is the ratio of the two p50s and the median of the paired differences, not the milliseconds.

    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/bench_paired.py --other /tmp/base --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

from _client import CLIENTS, add_client_option
from _readers import Reader, Timings, add_flow_option
from _setup import (
    ROOT,
    BenchEnv,
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


def _block(
    env: BenchEnv,
    versions: tuple[Path, Path],
    order: tuple[int, int],
    emails: list[str],
    study_id: int,
    pairs: range,
    args: argparse.Namespace,
    timings: list[Timings],
    bar: tqdm,
) -> None:
    """Serve both versions (started in `order`), sign `emails[k]` in to version k, warm both up, then read
    the numbered `pairs`, a case per version each, alternately (which goes first alternates too)."""
    servers, clients, readers = {}, {}, {}
    try:
        for k in order:
            port = free_port()
            servers[k] = start_server(env, port, root=versions[k])
            clients[k] = CLIENTS[args.client](f"http://127.0.0.1:{port}", 30.0)
            login(clients[k], emails[k])
            readers[k] = Reader(clients[k], study_id, browser=args.flow == "browser")
        for k in order:
            readers[k].read(args.warmup, random.Random(-k), Timings())
        for i in pairs:
            for k in (0, 1) if i % 2 == 0 else (1, 0):
                readers[k].read(1, random.Random(i), timings[k])
            bar.update()
    finally:
        for client in clients.values():
            client.close()
        for proc in servers.values():
            stop_server(proc)


def main() -> None:
    """Seed once, serve both checkouts, read alternately, print both versions and their paired difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_database_option(parser)
    parser.add_argument("--other", type=Path, required=True, help="The checkout to compare with this one.")
    parser.add_argument("--pairs", type=int, default=250, help="Timed cases per version.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed cases per reader and block, first.")
    parser.add_argument(
        "--blocks",
        type=int,
        default=4,
        help="Server restarts: each block starts both afresh, in swapped order.",
    )
    parser.add_argument("--images", type=int, default=200, help="Phantoms per image set.")
    parser.add_argument("--size", type=int, default=256, help="Image side length (px).")
    parser.add_argument("--answered", type=int, default=0, help="Cases each reader answered before.")
    add_client_option(parser)
    add_flow_option(parser)
    args = parser.parse_args()
    if not 1 <= args.blocks <= args.pairs:
        parser.error("need 1 <= --blocks <= --pairs")
    if not (args.other / "app" / "web" / "main.py").exists():
        parser.error(f"{args.other} is not a checkout of this project")
    cases = args.answered + args.blocks * args.warmup + args.pairs
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
    versions = (ROOT, args.other.resolve())
    timings = [Timings(), Timings()]
    with bench_database(args.database_url) as env:
        study_id, emails = seed(env, study)
        bar = tqdm(total=args.pairs, desc="pairs", unit="pair")
        for block in range(args.blocks):
            # Fresh servers per block, started in alternating order, and the two readers swapped: in two A/A
            # runs (both versions one checkout, one server each all along) the server started first was 3.5
            # and 5.1 % slower on the image, whatever that process's start gave it.
            order = (0, 1) if block % 2 == 0 else (1, 0)
            pairs = range(args.pairs * block // args.blocks, args.pairs * (block + 1) // args.blocks)
            readers = [emails[(k + block) % 2] for k in (0, 1)]
            _block(env, versions, order, readers, study_id, pairs, args, timings, bar)
        bar.close()
    errors = timings[0].errors + timings[1].errors
    print(
        f"\n{args.pairs} cases per version, read alternately in {args.blocks} blocks; {args.size} px; "
        f"{env.label}; {args.client} client, {args.flow} flow"
    )
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
