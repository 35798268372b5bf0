"""`synth_vs_real`: train on synthetic, test on real (app.ml.classifier.synth_vs_real); the table is saved
with the run (outputs and synth_vs_real.csv) and shown on its page."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.domain.run_kinds import SynthVsRealConfig
from app.jobs.tasks.patients import generators_note, patient_split
from app.jobs.tasks.runner import Aborted, RunContext, log
from app.jobs.tasks.train_classifier import load_labelled
from app.ml.files import atomic_write
from app.persistence.model_store import find_model
from app.persistence.repositories import image_sets

TABLE_FILE = "synth_vs_real.csv"


def table_csv(result: dict[str, Any]) -> str:
    """One row per finding: AUROC and its 95 % interval for each training source; the macro mean last."""
    from app.ml.classifier.synth_vs_real import SOURCES

    def num(v: float | None) -> str:
        return "" if v is None else f"{v:.4f}"

    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        ["finding", "positives", *[f"{s} {c}" for s in SOURCES for c in ("auroc", "ci_low", "ci_high")]]
    )
    for row in result["table"]:
        cells = [num(row[s][k]) for s in SOURCES for k in ("auroc", "low", "high")]
        w.writerow([row["finding"], row["real"]["positives"], *cells])
    w.writerow(["macro mean", "", *[c for s in SOURCES for c in (num(result["macro"][s]), "", "")]])
    return out.getvalue()


def labelling_split(session: Session, cfg: SynthVsRealConfig) -> tuple[dict[str, Any] | None, str]:
    """The split of the classifier that labelled the archive, when it was trained on this real set.

    Its test patients are then the only real films that neither it nor (through LCO) the archive has
    learnt from; splitting afresh could put its training patients into the test split.
    """
    first = image_sets.first_provenance(session, cfg.archive_set_id)
    name = (first or {}).get("classifier")
    snap = find_model(get_settings().models_dir, name, kind="classifier") if name else None
    if snap is None:
        return None, f"own patient split (seed {cfg.seed}): the archive names no known classifier"
    split = snap.manifest.get("split") or {}
    if split.get("image_set_id") != cfg.real_set_id:
        return None, f"own patient split (seed {cfg.seed}): {name} was trained on another set"
    if split.get("patients", "all") != "all":  # its split is of that half only
        return None, f"own patient split (seed {cfg.seed}): {name} was trained on the {split['patients']}"
    keys = ("seed", "val_fraction", "test_fraction")
    return {k: split[k] for k in keys}, f"the patient split {name} was trained with (seed {split['seed']})"


def synth_vs_real_body(ctx: RunContext, session: Session) -> dict[str, Any]:
    """Load both sets on the real set's findings, run the three trainings, store the table."""
    from app.ml.classifier.config import ClassifierConfig, ClassifierTrainConfig
    from app.ml.classifier.synth_vs_real import synth_vs_real
    from app.ml.devices import best_device

    cfg: SynthVsRealConfig = ctx.config  # type: ignore[assignment]
    split, split_note = labelling_split(session, cfg)
    tcfg = ClassifierTrainConfig(epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed)
    if split is not None:
        tcfg = replace(tcfg, **split)
    # The real split first (patients only, no films read yet), so a generator that learnt from any test
    # patient is refused, naming the count, before anything is loaded.
    keys, parts = patient_split(
        session,
        cfg.real_set_id,
        val_fraction=tcfg.val_fraction,
        test_fraction=tcfg.test_fraction,
        seed=tcfg.seed,
    )
    generators = image_sets.provenance_values(session, cfg.archive_set_id, "model")
    generator_note = generators_note(get_settings().models_dir, generators, {keys[i] for i in parts["test"]})
    real_name, findings, r_img, r_lab, patients, given = load_labelled(
        session, cfg.real_set_id, cfg.image_size
    )
    syn_name, _, s_img, s_lab, _, _ = load_labelled(session, cfg.archive_set_id, cfg.image_size, findings)
    session.rollback()  # the reads are done; training holds no transaction open
    log.info(
        "synthetic-train, real-test: '%s' (%d) and '%s' (%d)", real_name, len(r_img), syn_name, len(s_img)
    )
    log.info("real films split by %s; the archive's generator: %s", split_note, generator_note)
    net = ClassifierConfig(
        findings=tuple(findings), arch=cfg.arch, image_size=cfg.image_size, width=cfg.width
    )
    result = synth_vs_real(
        net,
        tcfg,
        (r_img, r_lab, patients, given),
        (s_img, s_lab),
        parts=parts,
        progress_fn=ctx.report,
        abort_fn=ctx.should_abort,
        device=best_device(),
    )
    if result.get("aborted"):
        raise Aborted()
    result["split"], result["generator_patients"] = split_note, generator_note
    text = table_csv(result)
    atomic_write(ctx.run_dir / TABLE_FILE, lambda f: f.write(text.encode()))
    log.info("macro AUROC on real test films: %s", result["macro"])
    return {"synth_vs_real": result, "real_set": real_name, "archive_set": syn_name}
