"""Independence through the real queue and worker: an LCO judge other than the classifier LCO attacks,
and a GAN held out from the real patients that synth_vs_real tests on."""

from __future__ import annotations

import io
import json

import numpy as np
import torch
from PIL import Image as PILImage
from sqlalchemy import select

from app.domain.importers import ImportSpec, SourceImage, import_images
from app.ml import phantoms as ph
from app.ml.classifier.checkpoints import load_classifier, save_classifier
from app.ml.classifier.config import ClassifierConfig
from app.ml.classifier.networks import Classifier
from app.ml.classifier.split import split_by_patient
from app.ml.classifier.train import predict
from app.persistence.db import get_sessionmaker
from app.persistence.model_store import BUNDLED, find_model
from app.persistence.models import Image, ImageSet
from app.persistence.patient_records import half_of, learnt_patients, patient_key, write_patients
from tests import factories
from tests.factories import TINY_GAN, start_run, wait_for

GENERATOR, CLASSIFIER = "phantom-pggan-64", "phantom-classifier-64"


def keys_of(*ids: str) -> list[str]:
    return [patient_key(i, "") for i in ids]


def tiny_classifier(store_dir, name: str, *, learnt: list[str] | None, says: float | None = None) -> None:
    """A small-CNN classifier of the phantom findings in the model store; `says` fixes every logit."""
    torch.manual_seed(len(name))
    model = Classifier(ClassifierConfig(findings=tuple(ph.FINDINGS), arch="small", image_size=32, width=4))
    if says is not None:
        with torch.no_grad():
            model.net.head.weight.zero_()
            model.net.head.bias.fill_(says)
    folder = store_dir / "models" / name
    folder.mkdir(parents=True)
    manifest = {"name": name, "source": "test"}
    if learnt is not None:
        manifest["patients"] = write_patients(folder, learnt=learnt)
    save_classifier(model, folder, thresholds=np.full(len(ph.FINDINGS), 0.5), manifest=manifest)


def test_the_judge_decides_success_where_the_steerer_was_attacked(signed_in, workers, store, store_dir):
    # A judge trained on other patients that sees no finding at all: the steerer's "yes" must not count.
    tiny_classifier(store_dir, "naysayer", learnt=keys_of(*(f"phantom-900-{i}" for i in range(40))), says=-8)
    admin = signed_in("admin")
    run_id = start_run(
        admin,
        "lco",
        model=GENERATOR,
        classifier=CLASSIFIER,
        judge="naysayer",
        n="4",
        target_mode="explicit",
        combos="Effusion; Pneumothorax",
        steps="150",
        lr="0.1",
        batch="4",
        restarts="1",
        set_name="Judged archive",
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    out = run.outputs
    assert out["judged_by"] == "naysayer" and out["independence"] == "verified: trained on disjoint patients"
    assert out["steerer_success_rate"] >= 0.5 and out["judge_success_rate"] == 0 == out["success_rate"]
    with get_sessionmaker()() as s:
        archive = s.scalar(select(ImageSet).where(ImageSet.name == "Judged archive"))
        images = s.scalars(select(Image).where(Image.image_set_id == archive.id).order_by(Image.id)).all()
    assert archive.resolution == 64 and len(images) == 4
    steerer, _ = load_classifier(BUNDLED / CLASSIFIER)
    judge, _ = load_classifier(store_dir / "models" / "naysayer")
    for img in images:
        p = img.provenance
        assert p["judge"] == "naysayer" and len(p["judge_sha256"]) == 64
        assert p["success"] is False and p["judge_success"] is False and img.labels == []
        # Both classifiers' probabilities are of the film as stored (8-bit PNG, decoded), not of G's output.
        with PILImage.open(io.BytesIO(store.get(img.sha256))) as stored:
            film = torch.from_numpy(np.array(stored.convert("L")))[None]
        assert film.shape == (1, 64, 64)
        for model, key in ((steerer, "achieved"), (judge, "judged")):
            probs = predict(model, film)[0]
            assert np.allclose([p[key][f] for f in ph.FINDINGS], probs, atol=1e-4), key
    assert sum(img.provenance["steerer_success"] for img in images) == round(4 * out["steerer_success_rate"])
    page = admin.get(f"/runs/{run_id}").text
    assert "0 % by naysayer" in page and "which LCO optimised against" in page


def test_a_judge_must_be_independent_of_the_steerer(signed_in, session, store, store_dir):
    bundled = learnt_patients(find_model(store_dir / "models", CLASSIFIER, kind="classifier"))
    tiny_classifier(store_dir, "overlapping", learnt=sorted(bundled)[:7] + keys_of("new-1", "new-2"))
    tiny_classifier(store_dir, "unrecorded", learnt=None)
    clone = store_dir / "models" / "clone"
    clone.mkdir(parents=True)
    for f in ("classifier.safetensors", "config.json", "manifest.json"):
        (clone / f).write_bytes((BUNDLED / CLASSIFIER / f).read_bytes())
    admin = signed_in("admin")
    page = admin.get("/runs/new?kind=lco")
    assert 'name="judge"' in page.text and "overlapping" in page.text
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "lco", "request_key": "j1"}
    data |= {"model": GENERATOR, "classifier": CLASSIFIER, "target_mode": "balanced"}
    r = admin.post("/runs", data=data | {"judge": "overlapping"})
    assert r.status_code == 422 and "it learnt from 7 of the steering classifier&#39;s patients" in r.text
    r = admin.post("/runs", data=data | {"judge": CLASSIFIER})
    assert r.status_code == 422 and "the judge must be another classifier" in r.text
    r = admin.post("/runs", data=data | {"judge": "clone"})
    assert r.status_code == 422 and "the steering classifier under another name" in r.text
    # Without a record the run may go ahead; it notes that independence could not be verified.
    r = admin.post("/runs", data=data | {"judge": "unrecorded"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    # A GAN can only be held out from a classifier's test patients if the classifier records them.
    films = factories.phantom_set(session, store, name="films", kind="real", n=4, size=32)
    session.commit()
    page = admin.get("/runs/new?kind=train_gan")
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "train_gan", "request_key": "g1"}
    data |= {"image_set_id": str(films.id), "model_name": "g"}
    r = admin.post("/runs", data=data | {"exclude_test_of": "unrecorded"})
    assert r.status_code == 422 and "this classifier records no test patients" in r.text
    r = admin.post("/runs", data=data | {"exclude_test_of": CLASSIFIER}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_classifiers_on_the_two_halves_record_disjoint_patients(
    signed_in, workers, session, store, store_dir
):
    films = factories.phantom_set(session, store, name="labelled", kind="real", n=40, size=32)
    session.commit()
    admin = signed_in("admin")
    tiny = {"image_set_id": str(films.id), "image_size": "32", "width": "4", "epochs": "1", "batch": "16"}
    runs = [
        start_run(admin, "train_classifier", model_name=name, patients=half, **tiny)
        for name, half in (("clf-a", "first half"), ("clf-b", "second half"))
    ]
    workers.start()
    for run_id in runs:
        run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
        assert run.status == "succeeded", run.error
    patients = keys_of(*(f"phantom-0-{i}" for i in range(40)))
    records = {}
    for name, half in (("clf-a", "first half"), ("clf-b", "second half")):
        record = json.loads((store_dir / "models" / name / "patients.json").read_text())
        everyone = set(record["learnt"]) | set(record["test"])
        assert everyone == {k for k in patients if half_of(k) == half} and len(everyone) > 10
        assert not set(record["learnt"]) & set(record["test"])
        records[name] = set(record["learnt"])
    assert not records["clf-a"] & records["clf-b"]
    # The form takes one as the other's judge: verified independent.
    page = admin.get("/runs/new?kind=lco")
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "lco", "request_key": "h1"}
    data |= {"model": GENERATOR, "classifier": "clf-a", "judge": "clf-b", "target_mode": "balanced"}
    assert admin.post("/runs", data=data, follow_redirects=False).status_code == 303


def _archive_of(session, store, generator: str) -> ImageSet:
    """A labelled synthetic set whose films name `generator` as their maker."""
    items = [
        SourceImage(name=f"g-{p.index}", pixels=p.image, findings=p.findings, provenance={"model": generator})
        for p in ph.generate(24, size=32, seed=5, config=ph.DEMO_CONFIG)
    ]
    spec = ImportSpec(
        name="archive", kind="synthetic", label_schema=tuple(ph.FINDINGS), resolution=32, source="lco"
    )
    return import_images(session, store, spec, items, actor_id=None)


def test_a_gan_records_its_patients_holds_out_a_split_and_synth_vs_real_checks_them(
    signed_in, workers, session, store, store_dir
):
    real = factories.phantom_set(session, store, name="real", kind="real", n=24, size=32, seed=0)
    archive = _archive_of(session, store, "held-8")
    session.commit()
    ids = [f"phantom-0-{i}" for i in range(24)]

    def test_keys(seed: int) -> set[str]:
        parts = split_by_patient(
            24, patients=ids, given=None, val_fraction=0.15, test_fraction=0.15, seed=seed
        )
        return set(keys_of(*(ids[i] for i in parts["test"])))

    admin = signed_in("admin")
    gan_id = start_run(
        admin,
        "train_gan",
        image_set_id=str(real.id),
        model_name="held-8",
        exclude_split_seed="0",
        final_stable_images="512",
        **TINY_GAN,
    )
    workers.start()
    run = wait_for(gan_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    manifest = json.loads((store_dir / "models" / "held-8" / "manifest.json").read_text())
    learnt = set(json.loads((store_dir / "models" / "held-8" / "patients.json").read_text())["learnt"])
    assert (
        learnt == set(keys_of(*ids)) - test_keys(0) and len(learnt) == 20 == run.outputs["training_patients"]
    )
    assert manifest["patients"]["held_out"] == {"test_split_seed": 0, "image_set_id": real.id}

    def synth_vs_real(seed: str) -> int:
        return start_run(
            admin,
            "synth_vs_real",
            real_set_id=str(real.id),
            archive_set_id=str(archive.id),
            image_size="32",
            width="4",
            epochs="1",
            batch="16",
            seed=seed,
        )

    # Another split's test patients include some the generator trained on: refused, with the count.
    seen = len(test_keys(1) & learnt)
    assert seen > 0
    refused = wait_for(synth_vs_real("1"), lambda r: r.status not in ("queued", "running"), workers)
    assert refused.status == "failed"
    assert (
        f"generator held-8 was trained on {seen} of the {len(test_keys(1))} real test patients"
        in refused.error
    )
    # The split it was held out from is clean.
    clean = wait_for(synth_vs_real("0"), lambda r: r.status not in ("queued", "running"), workers)
    assert clean.status == "succeeded", clean.error
    note = clean.outputs["synth_vs_real"]["generator_patients"]
    assert note == "held-8: none of its 20 training patients is a test patient"
    assert note in admin.get(f"/runs/{clean.id}").text
