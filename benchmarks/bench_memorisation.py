"""The memorisation audit's nearest-neighbour search: 5,000 generates against 100,000 training films.

Synthetic (N, D) float32 feature matrices, D = 1024 as the DenseNet-121 classifier's penultimate layer
(--dim). Some generates are planted copies (features plus a little noise) of training rows drawn from the
whole set, so each row also says how many copies its search finds. Rows, each the median of --repeat rounds:

- old, capped (baseline): the audit before, `nearest` in float64 over the whole matrix, against the
  5,000 training films the default max_images kept (4.5 % of ChestX-ray14's 112,120);
- new, same cap: `NearestSearch` in float32 blocks, against those same 5,000 films;
- new, every film: against all N training films, as the audit now searches;
- the job's two searches: generates and as many held-out films, fed the same blocks;
- old, every film: the old code with the cap simply lifted (--skip-old leaves it out);
- faiss IndexFlatIP, every film, where `faiss` imports (exact inner-product search, the same matmul).

Time is printed as a multiple of the baseline's; memory is tracemalloc's peak above the inputs (numpy
reports its arrays to tracemalloc; faiss's own C++ buffers it cannot see, hence n/a), and the process's
peak RSS closes the output. No database is used.

    .venv/bin/python benchmarks/bench_memorisation.py
    .venv/bin/python benchmarks/bench_memorisation.py --quick
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from app.ml.metrics.memorisation import NearestSearch

BLOCK = 2048  # as app.jobs.tasks.memorisation.SEARCH_BLOCK: training rows per cached feature block
OLD_CAP = 5000  # the audit's default max_images, which used to cap the training films searched too
COPIES = 50  # planted copies among the generates


def old_nearest(train: np.ndarray, query: np.ndarray, *, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The audit's search before: float64 unit copies of the whole matrix, (chunk, N) similarities."""

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    t, q = unit(train), unit(query)
    idx, dist = np.empty(len(q), dtype=np.int64), np.empty(len(q))
    for start in range(0, len(q), chunk):
        sim = q[start : start + chunk] @ t.T  # (chunk, N_train)
        best = sim.argmax(axis=1)
        idx[start : start + chunk] = best
        dist[start : start + chunk] = 1.0 - sim[np.arange(len(best)), best]
    return idx, dist


def new_search(train: np.ndarray, *queries: np.ndarray) -> list[np.ndarray]:
    """The job's loop: each query set's NearestSearch fed the same training blocks."""
    searches = [NearestSearch(q) for q in queries]
    for offset in range(0, len(train), BLOCK):
        for s in searches:
            s.update(train[offset : offset + BLOCK], offset=offset)
    return [s.result()[0] for s in searches]


def faiss_search(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    import faiss

    t, q = (
        train / np.linalg.norm(train, axis=1, keepdims=True),
        query / np.linalg.norm(query, axis=1)[:, None],
    )
    index = faiss.IndexFlatIP(t.shape[1])
    index.add(np.ascontiguousarray(t, dtype=np.float32))
    return index.search(np.ascontiguousarray(q, dtype=np.float32), 1)[1][:, 0]


def measure(fn: Callable[[], np.ndarray]) -> tuple[float, float, np.ndarray]:
    """(seconds, tracemalloc peak MiB above what was allocated before, the nearest indices) of one run."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    idx = fn()
    seconds = time.perf_counter() - start
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    tracemalloc.stop()
    return seconds, peak, idx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100_000, help="training films")
    parser.add_argument("--generates", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=1024, help="feature size (DenseNet-121: 1024)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-old", action="store_true", help="leave out the old code at full size")
    parser.add_argument("--quick", action="store_true", help="10,000 x 500 at D = 128, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.train, args.generates, args.dim, args.repeat = 10_000, 500, 128, 1
    n, q, d = args.train, args.generates, args.dim
    cap = min(OLD_CAP, n)

    rng = np.random.default_rng(0)
    # Features of a ReLU network's pooled layer are non-negative; half-normal rows are as good as any
    # for timing (the search's cost does not depend on the values).
    train = np.abs(rng.standard_normal((n, d), dtype=np.float32))
    generates = np.abs(rng.standard_normal((q, d), dtype=np.float32))
    held_out = np.abs(rng.standard_normal((q, d), dtype=np.float32))
    sources = rng.choice(n, size=min(COPIES, q), replace=False)
    generates[: len(sources)] = train[sources] + rng.normal(0, 0.01, (len(sources), d)).astype(np.float32)
    capped = train[np.sort(rng.choice(n, size=cap, replace=False))]  # the old seeded subset

    rows: list[tuple[str, int, int]] = [
        (f"old, capped at {cap:,} (baseline)", cap, q),
        (f"new, same cap of {cap:,}", cap, q),
        ("new, every film", n, q),
        ("job: generates + held-out", n, 2 * q),
    ]
    runs: dict[str, Callable[[], np.ndarray]] = {
        rows[0][0]: lambda: old_nearest(capped, generates)[0],
        rows[1][0]: lambda: new_search(capped, generates)[0],
        rows[2][0]: lambda: new_search(train, generates)[0],
        rows[3][0]: lambda: new_search(train, generates, held_out)[0],
    }
    if not args.skip_old:
        rows.append(("old, every film", n, q))
        runs["old, every film"] = lambda: old_nearest(train, generates)[0]
    try:
        import faiss  # noqa: F401

        rows.append(("faiss IndexFlatIP, every film", n, q))
        runs["faiss IndexFlatIP, every film"] = lambda: faiss_search(train, generates)
    except ImportError:
        pass

    print(f"{n:,} training films x {q:,} generates, D = {d}, float32 inputs {train.nbytes / 2**20:,.0f} MiB")
    print(f"{'search':<34} {'train':>9} {'queries':>8} {'s':>8} {'x base':>7} {'peak MiB':>9} {'copies':>8}")
    # Rounds: every search once per round, so load from other processes that comes and goes falls on all
    # of them alike; each figure is the median over the rounds.
    results: dict[str, list[tuple[float, float, np.ndarray]]] = {name: [] for name, _, _ in rows}
    for _ in range(args.repeat):
        for name, _, _ in rows:
            results[name].append(measure(runs[name]))
    base = statistics.median(r[0] for r in results[rows[0][0]])
    for name, n_train, n_query in rows:
        seconds = statistics.median(r[0] for r in results[name])
        peak, idx = max(r[1] for r in results[name]), results[name][0][2]
        # A copy counts as found when its nearest row is its source (capped searches index the subset,
        # so they find a copy only where the subset holds it: compared by features, not by row number).
        source_rows = train[sources]
        found_rows = (capped if n_train == cap else train)[idx[: len(sources)]]
        found = int(np.all(found_rows == source_rows, axis=1).sum())
        print(
            f"{name:<34} {n_train:>9,} {n_query:>8,} {seconds:>8.2f} {seconds / base:>7.1f} "
            f"{'n/a' if name.startswith('faiss') else f'{peak:.1f}':>9} "
            f"{f'{found}/{len(sources)}':>8}"
        )
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:,.0f} MiB")


if __name__ == "__main__":
    main()
