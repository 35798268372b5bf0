"""Train on synthetic, test on real (Segal et al. 2021; medigan reports AUC 0.947 real-trained against
0.878 synthetic-trained for this generator): one classifier per training source, all chosen on the same
real validation patients and tested on the same real test patients, AUROC per finding side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.ml.classifier.config import ClassifierConfig, ClassifierTrainConfig
from app.ml.classifier.metrics import Auroc, macro_mean
from app.ml.classifier.split import split_by_patient
from app.ml.classifier.train import train_classifier
from app.ml.progress import Progress, ProgressFn

SOURCES = ("real", "synthetic", "real+synthetic")


def synth_vs_real(
    cfg: ClassifierConfig,
    tcfg: ClassifierTrainConfig,
    real: tuple[np.ndarray, np.ndarray, Sequence[str | None], Sequence[str | None]],
    synthetic: tuple[np.ndarray, np.ndarray],
    *,
    progress_fn: ProgressFn | None = None,
    abort_fn: Callable[[], bool] | None = None,
    device: Any = "cpu",
    parts: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """{"table": [{finding, source: Auroc...}], "macro": {source: value}, "sizes": {...}} or aborted."""
    r_img, r_lab, patients, given = real
    s_img, s_lab = synthetic
    parts = parts or split_by_patient(
        len(r_img),
        patients=patients,
        given=given,
        val_fraction=tcfg.val_fraction,
        test_fraction=tcfg.test_fraction,
        seed=tcfg.seed,
    )
    images = np.concatenate([r_img, s_img])
    labels = np.concatenate([r_lab, s_lab])
    syn_idx = np.arange(len(r_img), len(images))
    train_sets = {
        "real": parts["train"],
        "synthetic": syn_idx,
        "real+synthetic": np.concatenate([parts["train"], syn_idx]),
    }
    results: dict[str, dict[str, Auroc]] = {}
    for k, source in enumerate(SOURCES):
        split = {"train": train_sets[source], "val": parts["val"], "test": parts["test"]}

        def report(p: Progress, k: int = k, source: str = source) -> None:
            if progress_fn is not None:
                progress_fn(p.within(k / len(SOURCES), (k + 1) / len(SOURCES), f"{source}: {p.note}"))

        res = train_classifier(
            cfg, tcfg, images, labels, parts=split, progress_fn=report, abort_fn=abort_fn, device=device
        )
        if res.aborted:
            return {"aborted": True}
        results[source] = res.test
    table = [
        {"finding": f, **{source: _plain(results[source][f]) for source in SOURCES}} for f in cfg.findings
    ]
    return {
        "table": table,
        "macro": {source: macro_mean(results[source]) for source in SOURCES},
        "sizes": {
            "real_train": len(parts["train"]),
            "real_val": len(parts["val"]),
            "real_test": len(parts["test"]),
        }
        | {"synthetic_train": len(syn_idx)},
    }


def _plain(a: Auroc) -> dict[str, Any]:
    return {"auroc": a.value, "low": a.low, "high": a.high, "positives": a.positives}
