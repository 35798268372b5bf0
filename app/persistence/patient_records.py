"""Which patients a model learnt from: `patients.json` beside a snapshot's manifest.

A GAN learns from every film it trains on; a classifier from its train and validation patients (the
validation films pick its best epoch and thresholds). A classifier also records its test patients, so a
GAN can be trained without them. Two uses: an LCO judge must share no patient with the steerer it judges,
and synth_vs_real must not test on patients whose films shaped the generator.

A key is the first 16 hex digits of sha256("patient:" + id), or of sha256("film:" + the film's sha256)
for a film without a patient id (such a film is its own patient, as in the patient-wise split). Hashes
keep patient ids out of the model store; with 64 bits a chance collision among a million patients has
odds of about 3e-8. Keys are not scoped by image set: two imports of the same data share their patients,
as they should, and two data sets whose ids happen to coincide would be counted as sharing them: a false
alarm, never a missed overlap. The manifest holds only counts (it is read whenever models are listed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.persistence.model_store import StoredModel

PATIENTS_FILE = "patients.json"
FORMAT = "cxrlab-patients/1"
HALVES = ("first half", "second half")


def patient_key(patient_id: str | None, film_sha256: str) -> str:
    """The key of a film's patient (see the module docstring)."""
    source = f"patient:{patient_id}" if patient_id else f"film:{film_sha256}"
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def half_of(key: str) -> str:
    """The half of the patients a key falls in (its first hex digit below 8 or not): two classifiers
    trained on different halves share no patient."""
    return HALVES[int(key[0], 16) >= 8]


def write_patients(
    folder: Path, *, learnt: Iterable[str], test: Iterable[str] = (), **about: Any
) -> dict[str, Any]:
    """Write the record into `folder` (a staging folder: it appears with the snapshot) and return the
    manifest's "patients" entry: the file's name, the counts and `about` (e.g. the image set's id)."""
    learnt_keys, test_keys = sorted(set(learnt)), sorted(set(test))
    record = {"format": FORMAT, "learnt": learnt_keys, "test": test_keys, **about}
    (Path(folder) / PATIENTS_FILE).write_text(json.dumps(record) + "\n")
    return {"file": PATIENTS_FILE, "learnt": len(learnt_keys), "test": len(test_keys), **about}


def _record(snapshot: StoredModel) -> dict[str, Any] | None:
    entry = snapshot.manifest.get("patients")
    path = snapshot.folder / PATIENTS_FILE
    if not isinstance(entry, dict) or not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("format") == FORMAT else None


def learnt_patients(snapshot: StoredModel) -> frozenset[str] | None:
    """The keys of the patients the model learnt from; None when it records none (e.g. bundled or
    imported models, or ones trained before records were kept)."""
    record = _record(snapshot)
    return None if record is None else frozenset(record["learnt"])


def classifier_test_patients(snapshot: StoredModel) -> frozenset[str] | None:
    """The keys of a classifier's test patients; None when it records none."""
    record = _record(snapshot)
    return None if record is None or not record["test"] else frozenset(record["test"])


def shared_patients(a: StoredModel, b: StoredModel) -> int | None:
    """How many patients both models learnt from; None when either records none (not verifiable)."""
    pa, pb = learnt_patients(a), learnt_patients(b)
    return None if pa is None or pb is None else len(pa & pb)


def independence(steerer: StoredModel, judge: StoredModel) -> tuple[int | None, str]:
    """(shared patients or None, a note for the run's outputs) for an LCO steerer and its judge."""
    shared = shared_patients(steerer, judge)
    if shared is None:
        missing = [s.name for s in (steerer, judge) if learnt_patients(s) is None]
        return None, f"not verifiable: {' and '.join(missing)} record no training patients"
    if shared:
        return shared, f"{judge.name} learnt from {shared} of the patients {steerer.name} learnt from"
    return 0, "verified: trained on disjoint patients"
