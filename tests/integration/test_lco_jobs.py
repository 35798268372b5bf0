"""The classifier and LCO jobs through a real worker: a classifier trained on phantoms, and a labelled
archive built from the bundled generator and classifier, with complete provenance."""

from __future__ import annotations

from sqlalchemy import select

from app.persistence.db import get_sessionmaker
from app.persistence.models import Image, ImageSet
from tests import factories
from tests.factories import run_row, start_run, wait_for

GENERATOR, CLASSIFIER = "phantom-pggan-64", "phantom-classifier-64"


def test_train_classifier_job_publishes_a_classifier_with_its_auroc(
    signed_in, workers, session, store, store_dir
):
    images = factories.phantom_set(session, store, name="labelled", kind="real", n=40, size=32)
    session.commit()
    admin = signed_in("admin")
    run_id = start_run(
        admin,
        "train_classifier",
        image_set_id=str(images.id),
        model_name="clf-32",
        image_size="32",
        width="4",
        epochs="2",
        batch="16",
        class_weighting="true",
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    assert run.outputs["model"] == "clf-32" and "auroc_test_macro" in run.outputs
    manifest = (store_dir / "models" / "clf-32" / "manifest.json").read_text()
    assert '"kind": "classifier"' in manifest and '"thresholds"' in manifest
    page = admin.get("/models").text
    assert "clf-32" in page and "AUROC (test)" in page


def test_lco_job_builds_a_labelled_archive_with_provenance(signed_in, workers, session, store):
    labelled = factories.phantom_set(session, store, name="real labels", kind="real", n=30, size=64)
    session.commit()
    admin = signed_in("admin")
    run_id = start_run(
        admin,
        "lco",
        model=GENERATOR,
        classifier=CLASSIFIER,
        n="6",
        target_mode="explicit",
        combos="Cardiomegaly; Effusion+Atelectasis; ",
        steps="150",
        lr="0.1",
        batch="6",
        restarts="1",
        set_name="LCO archive",
        label_set_id=str(labelled.id),
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    with get_sessionmaker()() as s:
        archive = s.scalar(select(ImageSet).where(ImageSet.name == "LCO archive"))
        images = s.scalars(select(Image).where(Image.image_set_id == archive.id).order_by(Image.id)).all()
    assert archive.source == "lco" and archive.kind == "synthetic" and len(images) == 6
    assert "Cardiomegaly" in archive.label_schema
    wanted = [["Cardiomegaly"], ["Atelectasis", "Effusion"], []] * 2
    for img, target in zip(images, wanted, strict=True):
        p = img.provenance
        assert sorted(p["target"]) == target
        assert {
            "model",
            "model_sha256",
            "classifier",
            "classifier_sha256",
            "seed",
            "achieved",
            "steps",
        } <= set(p)
        assert len(p["latent"]) == 128 and p["job"] == run_id and p["attempts"] >= 1
        if p["success"]:
            assert sorted(img.labels) == target
    assert run.outputs["success_rate"] >= 0.5
    assert run_row(run_id).progress == 1.0


def test_lco_form_names_what_is_wrong(signed_in):
    admin = signed_in("admin")
    page = admin.get("/runs/new?kind=lco")
    assert "phantom-classifier-64" in page.text
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "lco", "request_key": "k"}
    data |= {
        "model": GENERATOR,
        "classifier": CLASSIFIER,
        "target_mode": "explicit",
        "combos": "Cardiomegaly+Gout",
    }
    r = admin.post("/runs", data=data)
    assert r.status_code == 422 and "not findings of the classifier: Gout" in r.text
    r = admin.post("/runs", data={**data, "target_mode": "empirical", "combos": ""})
    assert r.status_code == 422 and "empirical targets need a labelled set" in r.text


def test_synth_vs_real_job_saves_and_shows_the_table(signed_in, workers, session, store):
    real = factories.phantom_set(session, store, name="real", kind="real", n=40, size=32, seed=0)
    archive = factories.phantom_set(session, store, name="archive", kind="synthetic", n=30, size=32, seed=5)
    session.commit()
    admin = signed_in("admin")
    run_id = start_run(
        admin,
        "synth_vs_real",
        real_set_id=str(real.id),
        archive_set_id=str(archive.id),
        image_size="32",
        width="4",
        epochs="1",
        batch="16",
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error
    table = run.outputs["synth_vs_real"]
    assert [row["finding"] for row in table["table"]] == real.label_schema
    assert set(table["macro"]) == {"real", "synthetic", "real+synthetic"}
    assert table["sizes"]["synthetic_train"] == 30 and table["sizes"]["real_test"] > 0
    page = admin.get(f"/runs/{run_id}").text
    assert "Synthetic-train, real-test" in page and "Real + synthetic" in page
    csv_text = admin.get(f"/runs/{run_id}/synth_vs_real.csv").text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("finding,positives,real auroc") and lines[-1].startswith("macro mean")
    assert len(lines) == 2 + len(real.label_schema)


def test_evaluate_job_reports_the_domain_distance_beside_its_baseline(signed_in, workers, session, store):
    real = factories.phantom_set(session, store, name="real", kind="real", n=40, size=64, seed=0)
    twin = factories.phantom_set(session, store, name="twin", kind="synthetic", n=40, size=64, seed=3)
    session.commit()
    admin = signed_in("admin")
    run_id = start_run(
        admin,
        "evaluation",
        real_set_id=str(real.id),
        synthetic_set_id=str(twin.id),
        classifier=CLASSIFIER,
        extrapolate="true",
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers, quiet_s=120)
    assert run.status == "succeeded", run.error
    e = run.outputs["evaluation"]
    assert e["n_real"] == 40 and e["n_synthetic"] == 40 and e["resolution"] == 64
    assert e["extractor"] == CLASSIFIER and len(e["extractor_sha256"]) == 64
    assert e["domain_fd"] > 0 and e["baseline"] > 0
    assert e["ratio"] == round(e["synthetic_vs_real_matched"] / e["baseline"], 4) and e["n_matched"] == 20
    assert "256 images on each side" in e["fid_infinity_refused"]  # 40 films, 128 feature dimensions
    page = admin.get(f"/runs/{run_id}").text
    assert "Domain Fréchet distance" in page and "real half B against real half A" in page
    bad = admin.get("/runs/new?kind=evaluation")
    r = admin.post(
        "/runs",
        data={"csrf_token": factories.csrf_of(bad.text), "kind": "evaluation", "request_key": "e2"}
        | {"real_set_id": str(twin.id), "synthetic_set_id": str(twin.id), "classifier": CLASSIFIER},
    )
    assert r.status_code == 422 and "choose a real set" in r.text
