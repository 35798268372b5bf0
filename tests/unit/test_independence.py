"""Patient records and the rules built on them: an LCO judge independent of its steerer, a GAN held out
from the patients synth_vs_real tests on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.domain.run_kinds import LcoRunConfig, TrainGanConfig
from app.jobs.tasks.patients import generators_note
from app.persistence.model_store import find_model
from app.persistence.patient_records import (
    classifier_test_patients,
    half_of,
    independence,
    learnt_patients,
    patient_key,
    write_patients,
)


def _snapshot(models: Path, name: str, *, kind: str, learnt=None, test=()):
    """A snapshot folder with just its JSON files (and a patient record when `learnt` is given)."""
    folder = models / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"resolution": 8}))
    manifest = {"name": name, "sha256": name * 4} | ({"kind": "classifier"} if kind == "classifier" else {})
    if learnt is not None:
        manifest["patients"] = write_patients(folder, learnt=learnt, test=test, image_set_id=1)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return find_model(models, name, kind=kind)


def keys(*ids: str) -> list[str]:
    return [patient_key(i, "") for i in ids]


def test_a_key_names_the_patient_or_else_the_film():
    assert patient_key("p1", "aa") == patient_key("p1", "bb")  # a patient's films share one key
    assert patient_key(None, "aa") != patient_key(None, "bb")  # films without an id: their own patients
    assert patient_key(None, "aa") == patient_key("", "aa") != patient_key("aa", "aa")
    assert len(patient_key("p1", "")) == 16


def test_halves_split_patients_about_evenly_and_never_share_one():
    halves = [half_of(k) for k in keys(*(f"p{i}" for i in range(2000)))]
    assert set(halves) == {"first half", "second half"}
    assert 900 < halves.count("first half") < 1100


def test_records_round_trip_and_independence_is_counted(tmp_path):
    steerer = _snapshot(tmp_path, "steerer", kind="classifier", learnt=keys("a", "b", "c"), test=keys("t"))
    twin = _snapshot(tmp_path, "twin", kind="classifier", learnt=keys("b", "c", "d"))
    other = _snapshot(tmp_path, "other", kind="classifier", learnt=keys("x", "y"))
    unknown = _snapshot(tmp_path, "unknown", kind="classifier")
    assert learnt_patients(steerer) == frozenset(keys("a", "b", "c"))
    assert classifier_test_patients(steerer) == frozenset(keys("t"))
    assert classifier_test_patients(twin) is None
    assert steerer.manifest["patients"]["learnt"] == 3  # the manifest keeps counts, not keys
    assert independence(steerer, twin) == (2, "twin learnt from 2 of the patients steerer learnt from")
    assert independence(steerer, other) == (0, "verified: trained on disjoint patients")
    shared, note = independence(steerer, unknown)
    assert shared is None and note == "not verifiable: unknown record no training patients"


def test_synth_vs_real_refuses_a_generator_that_saw_its_test_patients(tmp_path):
    _snapshot(tmp_path, "saw", kind="generator", learnt=keys("a", "b", "c"))
    _snapshot(tmp_path, "blind", kind="generator", learnt=keys("a", "b"))
    _snapshot(tmp_path, "published", kind="generator")
    test = set(keys("b", "c", "z"))
    with pytest.raises(ValueError, match="generator saw was trained on 2 of the 3 real test patients"):
        generators_note(tmp_path, ["saw"], test)
    assert "saw" not in generators_note(tmp_path, ["blind"], set(keys("c")))
    assert generators_note(tmp_path, ["blind"], set(keys("c"))) == (
        "blind: none of its 2 training patients is a test patient"
    )
    assert generators_note(tmp_path, ["published"], test) == (
        "published: training patients unknown (records none)"
    )
    assert "no longer in the model store" in generators_note(tmp_path, ["gone"], test)
    assert (
        generators_note(tmp_path, [None], test) == "training patients unknown: the archive names no generator"
    )


def test_config_rules():
    base = {"model": "g", "classifier": "c", "target_mode": "balanced"}
    assert LcoRunConfig.model_validate(base | {"judge": ""}).judge is None
    assert LcoRunConfig.model_validate(base | {"judge": "j"}).judge == "j"
    with pytest.raises(ValidationError, match="the judge must be another classifier"):
        LcoRunConfig.model_validate(base | {"judge": "c"})
    gan = {"image_set_id": 1, "model_name": "g", "resolution": 8, "channels": "8,8", "batch_sizes": "4,4"}
    assert TrainGanConfig.model_validate(gan | {"exclude_split_seed": "3"}).exclude_split_seed == 3
    with pytest.raises(ValidationError, match="not both"):
        TrainGanConfig.model_validate(gan | {"exclude_split_seed": "3", "exclude_test_of": "c"})


def test_a_film_is_judged_as_stored():
    """The pixels LCO judges are those the archive stores: importing them renders the same bytes."""
    import numpy as np

    from app.domain.rendering import render_array
    from app.jobs.tasks.lco import stored_film

    film = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    stored = stored_film(film, 48)
    assert stored.shape == (48, 48) and stored.dtype == np.uint8
    assert render_array(stored, size=48).sha256 == render_array(film, size=48).sha256
    assert np.array_equal(stored_film(film, 64), film)  # at its own size, untouched
