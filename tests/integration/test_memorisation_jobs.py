"""The memorisation audit through a real worker: copies of training films are flagged and shown on the
image set's page, in the study form and in study exports; fresh films pass; `max_images` caps the generates
and the calibration but never the training films searched."""

from __future__ import annotations

import csv
import io

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

from app.cli.images import phantom_items
from app.domain import studies
from app.domain.importers import ImportSpec, SourceImage, import_images
from app.jobs.tasks.features import seeded_subset
from app.ml import phantoms
from app.persistence.db import get_sessionmaker
from app.persistence.models import Image, MemorisationCheck
from tests import factories
from tests.factories import answer_case, current_case, start_run, wait_for

CLASSIFIER = "phantom-classifier-64"


def _suspect_set(session, store, training_films: list[np.ndarray]):
    """A synthetic set of two exact copies, one lightly perturbed copy and ten fresh phantoms."""
    rng = np.random.default_rng(0)
    perturbed = np.clip(training_films[2].astype(int) + rng.integers(-3, 4, training_films[2].shape), 0, 255)
    copies = [
        SourceImage(name="copy-0", pixels=training_films[0]),
        SourceImage(name="copy-1", pixels=training_films[1]),
        SourceImage(name="perturbed-2", pixels=perturbed.astype(np.uint8)),
    ]
    fresh = list(phantom_items(10, size=64, seed=7, demo=True))
    schema = tuple(phantoms.FINDINGS)
    spec = ImportSpec(name="suspect", kind="synthetic", label_schema=schema, resolution=64, source="test")
    return import_images(session, store, spec, copies + fresh, actor_id=None)


def test_audit_flags_copies_through_a_worker_and_everywhere_they_matter(
    signed_in, workers, session, store, people
):
    training = factories.phantom_set(session, store, name="training", kind="real", n=40, seed=0)
    holdout = factories.phantom_set(session, store, name="held out", kind="real", n=30, seed=3)
    films = [np.asarray(PILImage.open(store.path(i.sha256))) for i in _images(session, training.id)[:3]]
    suspect = _suspect_set(session, store, films)
    session.commit()
    admin = signed_in("admin")
    run_id = start_run(
        admin,
        "memorisation",
        synthetic_set_id=str(suspect.id),
        training_set_id=str(training.id),
        holdout_set_id=str(holdout.id),
        classifier=CLASSIFIER,
        quantile="0.05",
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    summary = run.outputs["memorisation"]
    assert summary["n_generated"] == 13 and summary["n_holdout"] == 30

    with get_sessionmaker()() as s:
        rows = s.execute(
            select(Image.source_name, MemorisationCheck.flagged, MemorisationCheck.nearest_image_id)
            .join(Image, Image.id == MemorisationCheck.image_id)
            .where(MemorisationCheck.run_id == run_id)
        ).all()
    flagged = {name for name, flag, _ in rows if flag}
    assert flagged == {"copy-0", "copy-1", "perturbed-2"}
    train_ids = [i.id for i in _images(session, training.id)]
    nearest = {name: n for name, _, n in rows}
    assert [nearest["copy-0"], nearest["copy-1"], nearest["perturbed-2"]] == train_ids[:3]

    run_page = admin.get(f"/runs/{run_id}").text
    assert "3 of 13 generates are near-copies" in run_page and f"/images/{train_ids[0]}" in run_page
    verdicts = list(csv.DictReader(io.StringIO(admin.get(f"/runs/{run_id}/memorisation.csv").text)))
    assert len(verdicts) == 13 and [v["flagged"] for v in verdicts[:3]] == ["true"] * 3
    assert {v["source_name"] for v in verdicts[:3]} == {"copy-0", "copy-1", "perturbed-2"}
    set_page = admin.get(f"/image-sets/{suspect.id}").text
    assert "3 of 13 generates flagged as near-copies" in set_page
    researcher = signed_in("researcher")
    assert "3 near-copies of training films" in researcher.get("/studies/new").text

    # A launched study over the suspect set: its export says which cases were flagged.
    design = studies.StudyDesign(
        title="Audited",
        image_set_ids=[holdout.id, suspect.id],
        n_cases=26,
        reader_ids=[people["reader"].id],
        resolution=64,
        seed=1,
    )
    study = studies.create_study(session, store, design, actor_id=people["researcher"].id)
    studies.launch(session, store, study.id, actor_id=people["researcher"].id)
    session.commit()
    assert study.status == "launched", study.leakage
    reader = signed_in("reader")
    for _ in range(26):
        assert answer_case(reader, study.id, current_case(reader, study.id), "real", 3).status_code == 200
    export = researcher.get(f"/studies/{study.id}/export.csv")
    assert export.status_code == 200, export.text[:300]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    by_source = {r["source_name"]: r["memorisation_flag"] for r in rows if r["truth"] == "synthetic"}
    assert by_source["copy-0"] == "true" and by_source["perturbed-2"] == "true"
    assert by_source["phantom-7-00000"] == "false"
    assert {r["memorisation_flag"] for r in rows if r["truth"] == "real"} == {""}  # never audited


def test_a_copy_beyond_the_old_cap_is_flagged_and_the_training_features_are_cached(
    signed_in, workers, session, store
):
    """With max_images 10 the old audit searched 10 of the 40 training films; the copy here is of a film
    that seeded subset left out. Calibration first by the training set's held-out patients, then by a
    held-out set: the second run reads the training features from the first run's cached block."""
    training = factories.phantom_set(session, store, name="training", kind="real", n=40, seed=0)
    holdout = factories.phantom_set(session, store, name="held out", kind="real", n=30, seed=3)
    train_images = _images(session, training.id)
    old_cap = set(seeded_subset(list(range(40)), limit=10, seed=0))
    beyond = max(i for i in range(40) if i not in old_cap)
    film = np.asarray(PILImage.open(store.path(train_images[beyond].sha256)))
    schema = tuple(phantoms.FINDINGS)
    spec = ImportSpec(name="suspect", kind="synthetic", label_schema=schema, resolution=64, source="test")
    items = [SourceImage(name="copy", pixels=film), *phantom_items(5, size=64, seed=7, demo=True)]
    suspect = import_images(session, store, spec, items, actor_id=None)
    session.commit()
    admin = signed_in("admin")
    form = {
        "synthetic_set_id": str(suspect.id),
        "training_set_id": str(training.id),
        "classifier": CLASSIFIER,
        "quantile": "0.05",
        "max_images": "10",
    }
    split_run = start_run(admin, "memorisation", **form)
    workers.start()
    run = wait_for(split_run, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    summary = run.outputs["memorisation"]
    assert summary["n_training"] == 40 and summary["n_generated"] == 6
    # The held-out patients' films are left out of the calibration's search only.
    assert summary["n_calibration_searched"] == 40 - summary["n_holdout"] > 0
    assert summary["feature_blocks"] == {"total": 1, "cached": 0}
    assert [f["nearest_image_id"] for f in summary["flagged"]] == [train_images[beyond].id]

    holdout_run = start_run(admin, "memorisation", holdout_set_id=str(holdout.id), **form)
    run = wait_for(holdout_run, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    summary = run.outputs["memorisation"]
    assert summary["n_holdout"] == 10 and summary["n_calibration_searched"] == 40  # capped; all searched
    assert summary["feature_blocks"] == {"total": 1, "cached": 1}
    with get_sessionmaker()() as s:
        rows = s.execute(
            select(Image.source_name, MemorisationCheck.flagged, MemorisationCheck.nearest_image_id)
            .join(Image, Image.id == MemorisationCheck.image_id)
            .where(MemorisationCheck.run_id == holdout_run)
        ).all()
    assert {(name, n) for name, flag, n in rows if flag} == {("copy", train_images[beyond].id)}


def _images(session, set_id: int) -> list[Image]:
    return list(session.scalars(select(Image).where(Image.image_set_id == set_id).order_by(Image.id)))
