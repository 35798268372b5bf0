"""How long the results page's analysis takes as studies grow: readers x cases, all of it in memory.

Builds `Read` records of simulated readers (with ChestX-ray14's 14 findings labelled and marked) and times
`analyse_reads` and its parts: per-reader summaries (the baseline: what any results page needs), the MRMC
analyses, agreement with its bootstrap, per-finding agreement, realism, and the Vega-Lite specs. Prints
milliseconds (median of --repeat runs) and each part as a multiple of the baseline measured in the same run.

    .venv/bin/python benchmarks/bench_analysis.py
    .venv/bin/python benchmarks/bench_analysis.py --sizes 6x200,10x500 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from tqdm import tqdm

from app.domain.agreement import finding_agreement, reader_agreement
from app.domain.analysis import Read, analyse_reads, summary
from app.domain.figures import figures
from app.domain.labels import CXR14_FINDINGS as FINDINGS
from app.domain.ratings import study_mrmc
from app.domain.realism import realism


def simulate(readers: int, cases: int, seed: int = 0) -> list[Read]:
    """Readers with a modest skill (AUC about 0.65) reading every case of a 1:1 study."""
    rng = np.random.default_rng(seed)
    truth = rng.permutation(np.r_[np.zeros(cases // 2, bool), np.ones(cases - cases // 2, bool)])
    labels = [frozenset(f for f in FINDINGS if rng.random() < 0.1) for _ in range(cases)]
    look = rng.normal(0, 1, cases) + 0.5 * truth
    reads = []
    for j in range(readers):
        latent = look + rng.normal(0, 0.3) + rng.normal(0, 1, cases)
        for k in range(cases):
            synthetic = latent[k] > 0.25
            confidence = int(np.clip(1 + abs(latent[k] - 0.25) * 2, 1, 5))
            marks = frozenset(f for f in labels[k] if rng.random() < 0.6)
            reads.append(
                Read(
                    reader=f"R-{j:04d}",
                    case=f"c{k:05d}",
                    truth="synthetic" if truth[k] else "real",
                    verdict="synthetic" if synthetic else "real",
                    confidence=confidence,
                    set_name="gan" if truth[k] else "nih",
                    findings=marks,
                    labels=labels[k],
                    position=k,
                    duration_ms=int(rng.gamma(4, 2000)),
                )
            )
    return reads


def timed(fn, repeat: int) -> float:
    """Median wall time of fn() in milliseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def bench_size(readers: int, cases: int, repeat: int) -> None:
    """Print each part's time for one study size."""
    reads = simulate(readers, cases)
    by_reader: dict[str, list[Read]] = {}
    for r in reads:
        by_reader.setdefault(r.reader, []).append(r)
    labelled = [r for r in reads if r.labels is not None]
    analysis = analyse_reads(reads, findings=FINDINGS, ask_findings=True)
    parts = {
        "per-reader (baseline)": lambda: [summary(rs) for rs in by_reader.values()],
        "MRMC (4 analyses)": lambda: study_mrmc(reads),
        "reader agreement": lambda: reader_agreement(reads),
        "finding agreement": lambda: finding_agreement(
            FINDINGS, [r.findings for r in labelled], [r.labels for r in labelled], [r.case for r in labelled]
        ),
        "realism": lambda: realism(reads, FINDINGS),
        "whole analysis": lambda: analyse_reads(reads, findings=FINDINGS, ask_findings=True),
        "figure specs": lambda: figures(analysis),
    }
    base = None
    for name, fn in parts.items():
        ms = timed(fn, repeat)
        base = base or ms
        print(f"{f'{readers} x {cases}':>16} {len(reads):>9} {name:<22} {ms:>9.1f} {ms / base:>11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="3x40,6x200,10x500,20x1000", help="readers x cases, comma-separated"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    print(f"{'readers x cases':>16} {'readings':>9} {'part':<22} {'ms':>9} {'x baseline':>11}")
    for readers, cases in tqdm(sizes, desc="sizes"):
        bench_size(readers, cases, args.repeat)


if __name__ == "__main__":
    main()
