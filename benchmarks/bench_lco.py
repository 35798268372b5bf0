"""Latent class optimisation against rejection sampling: labelled images per second and success rate.

For single findings and for 2- and 3-finding combinations (each target is an exact label vector: the
named findings present, every other finding absent), with the bundled phantom generator and classifier.
Rejection sampling draws latents, classifies G(z) and keeps matches under the same acceptance rule as
LCO's success. Its throughput is its draws per second (measured on `--draws` latents in this run) times
its acceptance rate for the combination (counted on the same draws); a combination never met in those
draws gets an upper bound. LCO's throughput is the targets it reached divided by its wall time.

    .venv/bin/python benchmarks/bench_lco.py [--per-combo 8] [--draws 4096]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
COMBOS = [
    *[
        [f]
        for f in ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
    ],
    ["Atelectasis", "Effusion"],
    ["Cardiomegaly", "Effusion"],
    ["Mass", "Nodule"],
    ["Effusion", "Consolidation"],
    ["Atelectasis", "Effusion", "Consolidation"],
    ["Cardiomegaly", "Effusion", "Atelectasis"],
    ["Infiltration", "Mass", "Nodule"],
]


def main() -> None:
    """Measure both methods per combination and print a table with ratios."""
    import sys

    sys.path.insert(0, str(ROOT))
    from app.ml.classifier.checkpoints import load_classifier, thresholds_of
    from app.ml.gan.checkpoints import load_snapshot
    from app.ml.gan.sampling import latents
    from app.ml.lco import targets
    from app.ml.lco.optimise import LcoConfig, classify, optimise, reached, threshold_logits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-combo", type=int, default=8, help="LCO targets per combination.")
    parser.add_argument("--draws", type=int, default=4096, help="Latents drawn for the rejection baseline.")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--screen", type=int, default=1, help="Candidate latents screened per LCO start.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    G, _ = load_snapshot(ROOT / "model_store" / "phantom-pggan-64")
    C, manifest = load_classifier(ROOT / "model_store" / "phantom-classifier-64")
    findings, thr = list(manifest["findings"]), thresholds_of(manifest)
    cfg = LcoConfig(
        steps=args.steps, lr=args.lr, restarts=args.restarts, batch=args.per_combo, screen=args.screen
    )

    # Rejection: classify `draws` latents once; every combination's acceptance is counted on them.
    t0 = time.perf_counter()
    probs = []
    with torch.no_grad():
        for start in tqdm(range(0, args.draws, 64), desc="rejection draws", leave=False):
            z = latents(1, start, min(64, args.draws - start), G.cfg.z_dim)
            probs.append(classify(G, C, z))  # logits
    draw_s = time.perf_counter() - t0
    probs_t = torch.cat(probs)
    draws_per_s = args.draws / draw_s
    thr_t = threshold_logits(torch.tensor(thr, dtype=torch.float32))

    rows = []
    for combo in tqdm(COMBOS, desc="LCO per combination"):
        goal = targets.explicit([combo], findings, args.per_combo)
        accepted = int(
            reached(probs_t, torch.from_numpy(goal[:1]).expand(len(probs_t), -1), thr_t, cfg.margin).sum()
        )
        t0 = time.perf_counter()
        res = optimise(G, C, goal, thr, cfg, seed=11)
        lco_s = time.perf_counter() - t0
        rows.append((combo, accepted, res.success.mean(), res.success.sum() / lco_s, np.median(res.steps)))

    print(
        f"\nbench_lco: phantom-pggan-64 + phantom-classifier-64, CPU, torch threads {torch.get_num_threads()}"
    )
    print(
        f"  LCO: {args.per_combo} targets per combination, steps {cfg.steps}, lr {cfg.lr}, "
        f"restarts {cfg.restarts}, screening {cfg.screen} latents per start"
    )
    print(f"  rejection: {args.draws} draws in {draw_s:.1f} s = {draws_per_s:.1f} draws/s")
    head = f"  {'combination':<42}{'natural rate':>13}{'rej. img/s':>11}{'LCO success':>12}{'LCO img/s':>10}"
    print(head + f"{'med. steps':>11}{'LCO / rej.':>11}")
    for combo, accepted, success, lco_rate, steps in rows:
        rate = accepted / args.draws
        rej = rate * draws_per_s
        if accepted:
            rate_s, rej_s, ratio_s = f"{100 * rate:.2f} %", f"{rej:.2f}", f"{lco_rate / rej:.1f}"
        else:  # none in the draws: the rate is below 1 / draws
            bound = draws_per_s / args.draws
            rate_s, rej_s, ratio_s = (
                f"< {100 / args.draws:.3f} %",
                f"< {bound:.3f}",
                f"> {lco_rate / bound:.0f}",
            )
        print(
            f"  {' + '.join(combo):<42}{rate_s:>13}{rej_s:>11}{100 * success:>11.0f}%{lco_rate:>10.2f}"
            f"{steps:>11.0f}{ratio_s:>11}"
        )


if __name__ == "__main__":
    main()
