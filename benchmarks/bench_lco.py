"""Latent class optimisation against rejection sampling: labelled images per second and success rate.

For single findings and for 2- and 3-finding combinations (each target is an exact label vector: the
named findings present, every other finding absent), with the bundled phantom generator and classifier.
Rejection sampling draws latents, classifies G(z) and keeps matches under the same acceptance rule as
LCO's success. Its throughput is its draws per second (measured on `--draws` latents in this run) times
its acceptance rate for the combination (counted on the same draws); a combination never met in those
draws gets an upper bound. LCO's throughput is the targets it reached divided by its wall time.

Both methods accept by the classifier they consult (the steerer), and LCO optimises against it: an
adversarial attack whose success that classifier cannot judge. With `--judge`, a second classifier
(trained on other patients) reads the stored 8-bit films and the table adds its figures beside the
steerer's: the share of rejection's accepted draws it confirms, and the share of LCO's targets it
confirms. Without a judge the success column is the steerer's own (self-judged). A judge on phantoms of
another seed (disjoint patients): `python scripts/train_demo_classifier.py --seed 300 --out /tmp/judge`.

    .venv/bin/python benchmarks/bench_lco.py [--per-combo 8] [--draws 4096] [--judge DIR]
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
    from app.ml.classifier.train import predict
    from app.ml.gan.checkpoints import load_model
    from app.ml.gan.sampling import latents, to_uint8
    from app.ml.lco import targets
    from app.ml.lco.optimise import LcoConfig, classify, optimise, reached, threshold_logits
    from app.persistence.model_store import find_model
    from app.persistence.patient_records import independence

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-combo", type=int, default=8, help="LCO targets per combination.")
    parser.add_argument("--draws", type=int, default=4096, help="Latents drawn for the rejection baseline.")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--screen", type=int, default=1, help="Candidate latents screened per LCO start.")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument("--judge", type=Path, default=None, help="A second classifier's snapshot folder.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    G, _ = load_model(ROOT / "model_store" / "phantom-pggan-64")
    C, manifest = load_classifier(ROOT / "model_store" / "phantom-classifier-64")
    findings, thr = list(manifest["findings"]), thresholds_of(manifest)
    J = None
    if args.judge is not None:
        J, j_manifest = load_classifier(args.judge)
        cols = [list(j_manifest["findings"]).index(f) for f in findings]  # the judge's output per finding
        j_thr = threshold_logits(torch.tensor([j_manifest["thresholds"][f] for f in findings]))
        steerer_snap = find_model(ROOT / "model_store", "phantom-classifier-64", kind="classifier")
        judge_snap = find_model(args.judge.parent, args.judge.name, kind="classifier")
        independent = independence(steerer_snap, judge_snap)[1] if judge_snap else "not verifiable"

    def judged_films(films: torch.Tensor) -> torch.Tensor:
        """(N, F) judge logits of (N, s, s) uint8 films, in the steerer's finding order."""
        return torch.logit(torch.from_numpy(predict(J, films)[:, cols]).float().clamp(1e-7, 1 - 1e-7))

    def judged(z: torch.Tensor) -> torch.Tensor:
        """(N, F) judge logits on the 8-bit films of latents z (as an archive stores them at G's size)."""
        with torch.no_grad():
            return judged_films(torch.from_numpy(to_uint8(G(z), G.cfg.pixel_range)))

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
    judge_t = None  # the judge's logits on every draw (not timed: rejection's cost is the steerer's)
    if J is not None:
        starts = range(0, args.draws, 64)
        judge_t = torch.cat([judged(latents(1, k, min(64, args.draws - k), G.cfg.z_dim)) for k in starts])
    draws_per_s = args.draws / draw_s
    thr_t = threshold_logits(torch.tensor(thr, dtype=torch.float32))

    if J is not None:  # how often each classifier meets real films' true label vectors under the same rule
        from app.ml import phantoms as ph

        real = list(ph.generate(400, size=G.cfg.resolution, seed=7, config=ph.DEMO_CONFIG))
        truth = torch.tensor([[f in r.findings for f in findings] for r in real], dtype=torch.float32)
        films = torch.from_numpy(np.stack([r.image for r in real]))  # (400, s, s) uint8
        own = torch.logit(torch.from_numpy(predict(C, films)).float().clamp(1e-7, 1 - 1e-7))
        met = [
            reached(lg, truth, t, cfg.margin).float().mean()
            for lg, t in ((own, thr_t), (judged_films(films), j_thr))
        ]
        ceiling = f"steerer {100 * float(met[0]):.0f} %, judge {100 * float(met[1]):.0f} %"

    rows = []
    for combo in tqdm(COMBOS, desc="LCO per combination"):
        goal = targets.explicit([combo], findings, args.per_combo)
        goal_t = torch.from_numpy(goal)
        ok = reached(probs_t, goal_t[:1].expand(len(probs_t), -1), thr_t, cfg.margin)
        accepted = int(ok.sum())
        t0 = time.perf_counter()
        res = optimise(G, C, goal, thr, cfg, seed=11)
        lco_s = time.perf_counter() - t0
        judge_rej = judge_lco = None
        if judge_t is not None:
            j_ok = reached(judge_t, goal_t[:1].expand(len(judge_t), -1), j_thr, cfg.margin)
            judge_rej = float(j_ok[ok].float().mean()) if accepted else None  # of rejection's accepted
            judge_lco = float(reached(judged(res.z), goal_t, j_thr, cfg.margin).float().mean())  # of targets
        rows.append(
            (combo, accepted, res.success.mean(), res.success.sum() / lco_s, np.median(res.steps))
            + (judge_rej, judge_lco)
        )

    print(
        f"\nbench_lco: phantom-pggan-64 + phantom-classifier-64, CPU, torch threads {torch.get_num_threads()}"
    )
    print(
        f"  LCO: {args.per_combo} targets per combination, steps {cfg.steps}, lr {cfg.lr}, "
        f"restarts {cfg.restarts}, screening {cfg.screen} latents per start"
    )
    print(f"  rejection: {args.draws} draws in {draw_s:.1f} s = {draws_per_s:.1f} draws/s")
    if J is not None:
        print(
            f"  judge: {args.judge.name} on the 8-bit films, margin {cfg.margin}; independence {independent}"
        )
        print(
            "  judge columns: the share of rejection's accepted draws and of LCO's targets the judge confirms"
        )
        print(f"  the rule's ceiling, true label vectors of {len(real)} real phantoms met by: {ceiling}")
    else:
        print("  no judge: LCO success is the steering classifier's own verdict (self-judged)")
    success_head = "LCO success" if J is not None else "self-judged"
    head = f"  {'combination':<42}{'natural rate':>13}{'rej. img/s':>11}{success_head:>12}{'LCO img/s':>10}"
    head += f"{'med. steps':>11}{'LCO / rej.':>11}"
    print(head + (f"{'judge: rej.':>12}{'judge: LCO':>11}" if J is not None else ""))
    for combo, accepted, success, lco_rate, steps, judge_rej, judge_lco in rows:
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
        line = (
            f"  {' + '.join(combo):<42}{rate_s:>13}{rej_s:>11}{100 * success:>11.0f}%{lco_rate:>10.2f}"
            f"{steps:>11.0f}{ratio_s:>11}"
        )
        if J is not None:
            rej_j = "—" if judge_rej is None else f"{100 * judge_rej:.0f}%"
            line += f"{rej_j:>12}{100 * judge_lco:>10.0f}%"
        print(line)


if __name__ == "__main__":
    main()
