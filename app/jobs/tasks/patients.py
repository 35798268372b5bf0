"""Patients across tasks (records in app.persistence.patient_records): the keys of an image set's films,
the test patients a GAN is trained without, and synth_vs_real's check that the generator of its archive
never saw the real patients it tests on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.domain.run_kinds import TrainGanConfig
from app.ml.classifier.config import ClassifierTrainConfig
from app.ml.classifier.split import split_by_patient
from app.persistence.model_store import find_model
from app.persistence.patient_records import classifier_test_patients, learnt_patients, patient_key
from app.persistence.repositories import image_sets


def set_patients(session: Session, set_id: int) -> tuple[list[str], list[str | None], list[str | None]]:
    """Per film of the set in id order (the order every task loads films in): its patient key, patient id
    and given split."""
    rows = image_sets.image_columns(session, set_id, "sha256", "patient_id", "split")
    return (
        [patient_key(r.patient_id, r.sha256) for r in rows],
        [r.patient_id for r in rows],
        [r.split for r in rows],
    )


def patient_split(
    session: Session, set_id: int, *, val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[str], dict[str, Any]]:
    """(patient key per film, the split's index parts) of the set's patient-wise split: the one
    synth_vs_real makes, from the patients alone (no film is read)."""
    keys, patients, given = set_patients(session, set_id)
    parts = split_by_patient(
        len(keys),
        patients=patients,
        given=given,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    return keys, parts


def split_test_keys(session: Session, set_id: int, *, seed: int) -> set[str]:
    """The test patients of the set's patient-wise split with `seed` and the default fractions: the split
    synth_vs_real makes of its real set when the archive's classifier did not split that set."""
    defaults = ClassifierTrainConfig()
    keys, parts = patient_split(
        session, set_id, val_fraction=defaults.val_fraction, test_fraction=defaults.test_fraction, seed=seed
    )
    return {keys[i] for i in parts["test"]}


def held_out(session: Session, models_dir: Path, cfg: TrainGanConfig) -> tuple[set[str], dict[str, Any]]:
    """The patients a train_gan run must not see, and how they were chosen (for its manifest)."""
    if cfg.exclude_test_of:
        snap = find_model(models_dir, cfg.exclude_test_of, kind="classifier")
        test = classifier_test_patients(snap) if snap is not None else None
        if snap is None or test is None:
            raise ValueError(f"classifier {cfg.exclude_test_of} is gone or records no test patients")
        return set(test), {"test_patients_of": snap.name, "classifier_sha256": snap.manifest.get("sha256")}
    if cfg.exclude_split_seed is not None:
        keys = split_test_keys(session, cfg.image_set_id, seed=cfg.exclude_split_seed)
        return keys, {"test_split_seed": cfg.exclude_split_seed, "image_set_id": cfg.image_set_id}
    return set(), {}


def generators_note(models_dir: Path, names: Sequence[str | None], test_keys: set[str]) -> str:
    """What is known of the archive's generators' training patients against the real test patients.

    Raises ValueError naming the count when a generator learnt from any test patient: its films would
    carry those patients into the synthetic training set. A generator without a record (the published
    one, the bundled demo, models trained before records were kept) is reported, not refused: refusing
    would rule out the paper's own generator, and the note on the run says the test is not verified.
    """
    named = sorted({n for n in names if n})
    if not named:
        return "training patients unknown: the archive names no generator"
    notes = []
    for name in named:
        snap = find_model(models_dir, name)
        learnt = learnt_patients(snap) if snap is not None else None
        if learnt is None:
            why = "is no longer in the model store" if snap is None else "records none"
            notes.append(f"{name}: training patients unknown ({why})")
            continue
        shared = len(learnt & test_keys)
        if shared:
            raise ValueError(
                f"generator {name} was trained on {shared} of the {len(test_keys)} real test patients; "
                "train it with their split held out, or test on other patients"
            )
        notes.append(f"{name}: none of its {len(learnt):,} training patients is a test patient")
    return "; ".join(notes)
