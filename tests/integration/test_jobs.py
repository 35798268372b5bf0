"""Jobs through the real queue: the web app defers, a real `cxrlab worker` process runs them."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from sqlalchemy import func, select, text

from app.persistence.db import get_sessionmaker
from app.persistence.models import FINISHED, Image, ImageSet, Run, Study
from tests import factories
from tests.factories import run_row, start_run, start_tiny_training, wait_for

DEMO_MODEL = "phantom-pggan-64"
def job_count() -> int:
    with get_sessionmaker()() as s:
        return s.scalar(text("SELECT count(*) FROM procrastinate_jobs"))


def test_sampling_job_end_to_end_and_its_set_becomes_a_study_that_launches(
    signed_in, workers, session, store, people
):
    admin = signed_in("admin")
    run_id = start_run(admin, "sample", model=DEMO_MODEL, n="12", seed="3", batch="4")
    assert run_row(run_id).status == "queued" and job_count() == 1
    workers.start()
    run = wait_for(run_id, lambda r: r.status == "succeeded", workers)
    assert run.progress == 1.0 and run.error is None and run.attempt == 1
    set_id = run.outputs["image_set_id"]
    with get_sessionmaker()() as s:
        image_set = s.get(ImageSet, set_id)
        assert (image_set.kind, image_set.image_count, image_set.source) == ("synthetic", 12, "sampling")
        provenance = [i.provenance for i in s.scalars(select(Image).where(Image.image_set_id == set_id))]
    assert {p["job"] for p in provenance} == {run_id} and {p["seed"] for p in provenance} == {3}
    assert sorted(p["latent_index"] for p in provenance) == list(range(12))

    page = admin.get(f"/runs/{run_id}")
    assert f"/image-sets/{set_id}" in page.text and f"/studies/new?image_set_ids={set_id}" in page.text
    assert 'hx-trigger="every' not in page.text  # a finished run stops polling
    assert f"/runs/{run_id}/grid.png" in page.text  # what the run made, as a grid of its first films
    grid = admin.get(f"/runs/{run_id}/grid.png")
    assert grid.status_code == 200 and grid.content.startswith(b"\x89PNG")
    form = admin.get(f"/studies/new?image_set_ids={set_id}")
    assert re.search(rf'value="{set_id}" checked', form.text)

    real = factories.phantom_set(session, store, name="real 64", kind="real", n=12, size=64)
    session.commit()
    r = admin.post(
        "/studies",
        data={
            "csrf_token": factories.csrf_of(form.text),
            "title": "From a sampling run",
            "image_set_ids": [real.id, set_id],
            "n_cases": "12",
            "resolution": "64",
            "reader_ids": [people["reader"].id],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    # Models -> Sample -> new study -> Launch launches: the generator's look is for readers to judge, and the
    # machine's separability figure is shown beside it, never blocking.
    study_id = int(r.headers["location"].rsplit("/", 1)[1])
    token = factories.csrf_of(admin.get(f"/studies/{study_id}").text)
    launched = admin.post(f"/studies/{study_id}/launch", data={"csrf_token": token})
    assert "Launch blocked" not in launched.text, launched.text
    assert "tells these sets apart with cross-validated AUC" in launched.text
    with get_sessionmaker()() as s:
        study = s.get(Study, study_id)
        assert study.status == "launched" and study.leakage["passed"] is True
        assert study.leakage["odd_lengths"] == [] and study.leakage["separability"]["n_synthetic"] == 6
    results = admin.get(f"/studies/{study_id}/results").text
    assert 'id="machine-separability"' in results and "tells these sets apart" in results


def test_tiny_train_gan_reports_progress_and_publishes_a_model(signed_in, workers, session, store, store_dir):
    admin = signed_in("admin")
    run_id = start_tiny_training(admin, session, store, model_name="tiny-8", final_stable_images="2048")
    workers.start()
    seen: set[float] = set()
    run = wait_for(
        run_id, lambda r: seen.add(round(r.progress, 3)) or r.status not in ("queued", "running"), workers
    )
    assert run.status == "succeeded", run.error
    assert len([p for p in seen if 0 < p < 1]) >= 2, f"progress rows seen: {sorted(seen)}"
    assert run.outputs["model"] == "tiny-8" and run.outputs["images_seen"] == 512 + 512 + 2048
    model = store_dir / "models" / "tiny-8"
    assert (model / "generator.safetensors").exists() and '"source": "run' in (
        model / "manifest.json"
    ).read_text()
    page = admin.get(f"/runs/{run_id}")
    assert "<svg" in page.text and "critic" in page.text  # loss curves
    assert (
        f"/runs/{run_id}/grid.png" in page.text and admin.get(f"/runs/{run_id}/grid.png").status_code == 200
    )
    assert "succeeded" in page.text and " · d " in page.text  # the log's tail, with loss lines
    assert "tiny-8" in admin.get("/models").text


def test_cancel_while_running_leaves_no_image_set(signed_in, workers):
    admin = signed_in("admin")
    run_id = start_run(admin, "sample", model=DEMO_MODEL, n="20000", batch="8", set_name="never")
    workers.start()
    wait_for(run_id, lambda r: r.status == "running" and r.progress > 0, workers)
    page = admin.get(f"/runs/{run_id}")
    r = admin.post(f"/runs/{run_id}/cancel", data={"csrf_token": factories.csrf_of(page.text)})
    assert r.status_code == 200
    run = wait_for(run_id, lambda r: r.status != "running", workers, quiet_s=30, cap_s=120)
    assert run.status == "cancelled" and run.progress < 1
    with get_sessionmaker()() as s:
        assert s.scalar(select(func.count()).select_from(ImageSet)) == 0
        assert s.scalar(select(func.count()).select_from(Image)) == 0


def test_sigkill_mid_training_then_retry_resumes_and_completes(signed_in, workers, session, store, store_dir):
    admin = signed_in("admin")
    run_id = start_tiny_training(
        admin, session, store, model_name="killed-8", final_stable_images="6144", checkpoint_every="512"
    )
    first = workers.start()
    resume = store_dir / "runs" / str(run_id) / "attempt-1" / "resume.pt"
    wait_for(run_id, lambda r: r.status == "running" and resume.exists() and r.progress > 0.1, workers)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = run_row(run_id).progress
    assert killed_at < 1

    time.sleep(4.5)  # RUN_STALL_AFTER_S in tests/conftest.py
    page = admin.get(f"/runs/{run_id}")  # any page view reaps silent runs
    run = run_row(run_id)
    assert run.status == "stalled" and "No heartbeat" in run.error
    assert "Retry" in page.text
    r = admin.post(f"/runs/{run_id}/retry", data={"csrf_token": factories.csrf_of(page.text)})
    assert r.status_code == 200 and run_row(run_id).status == "queued"
    again = admin.post(f"/runs/{run_id}/retry", data={"csrf_token": factories.csrf_of(page.text)})
    assert again.status_code == 409 and job_count() == 2  # a second click queues nothing more

    workers.start()
    run = wait_for(run_id, lambda r: r.status in ("succeeded", "failed"), workers)
    assert run.status == "succeeded", run.error
    assert run.attempt == 2 and run.outputs["images_seen"] == 512 + 512 + 6144
    log = (store_dir / "runs" / str(run_id) / "log.txt").read_text()
    assert "resuming from attempt-2/resume.pt" in log
    with get_sessionmaker()() as s:  # the dead attempt's job is closed, the new one succeeded
        statuses = s.execute(text("SELECT status FROM procrastinate_jobs ORDER BY id")).scalars().all()
    assert statuses == ["failed", "succeeded"]


def test_each_sampling_form_draws_a_fresh_seed_and_the_run_records_it(signed_in):
    admin = signed_in("admin")
    seeds = [
        re.search(r'name="seed"[^>]*value="(\d+)"', admin.get("/runs/new?kind=sample").text).group(1)
        for _ in range(2)
    ]
    assert seeds[0] != seeds[1]  # equal once in 2**31
    run_id = start_run(admin, "sample", model=DEMO_MODEL, n="2", seed=seeds[1])
    assert run_row(run_id).config["seed"] == int(seeds[1])


def test_a_double_submit_makes_one_run_and_one_job(signed_in, people):
    admin = signed_in("admin")
    page = admin.get("/runs/new?kind=sample")
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "sample", "request_key": key}
    data |= {"model": DEMO_MODEL, "n": "4"}
    results: list = []
    barrier = threading.Barrier(2)

    def submit() -> None:
        barrier.wait()
        results.append(admin.post("/runs", data=data, follow_redirects=False))

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [303, 303]
    assert results[0].headers["location"] == results[1].headers["location"]
    with get_sessionmaker()() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 1
    assert job_count() == 1


def test_bad_configs_are_refused_with_the_field_named(signed_in):
    admin = signed_in("admin")
    page = admin.get("/runs/new?kind=sample")
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "sample", "request_key": "k1"}
    r = admin.post("/runs", data={**data, "model": DEMO_MODEL, "n": "0"})
    assert r.status_code == 422 and "greater than or equal to 1" in r.text
    r = admin.post("/runs", data={**data, "model": "no-such-model", "n": "5"})
    assert r.status_code == 422 and "no such model" in r.text
    r = admin.post("/runs", data={**data, "kind": "train_gan", "image_set_id": "999", "model_name": "x"})
    assert r.status_code == 422 and "no such image set" in r.text
    with get_sessionmaker()() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0
    assert job_count() == 0


def test_a_failed_job_stores_its_error(signed_in, workers):
    admin = signed_in("admin")
    run_id = start_run(admin, "import_segal", path="/nonexistent/Final_Full_Model.pth", model_name="segal-x")
    workers.start()
    run = wait_for(run_id, lambda r: r.status in ("failed", "succeeded"), workers)
    assert run.status == "failed" and "is not a file" in run.error
    page = admin.get(f"/runs/{run_id}")
    assert "is not a file" in page.text and "Retry" in page.text


def test_cancel_of_a_queued_run_is_immediate_and_its_job_never_runs(signed_in, workers):
    admin = signed_in("admin")
    run_id = start_run(admin, "sample", model=DEMO_MODEL, n="4")
    page = admin.get(f"/runs/{run_id}")
    admin.post(f"/runs/{run_id}/cancel", data={"csrf_token": factories.csrf_of(page.text)})
    assert run_row(run_id).status == "cancelled"
    workers.start()
    # The worker takes jobs in order: once a run queued after it has finished, the cancelled one had its turn.
    later = start_run(admin, "sample", model=DEMO_MODEL, n="2", set_name="later")
    assert wait_for(later, lambda r: r.status in FINISHED, workers).status == "succeeded"
    assert run_row(run_id).status == "cancelled"
    with get_sessionmaker()() as s:
        statuses = s.execute(text("SELECT status FROM procrastinate_jobs ORDER BY id")).scalars().all()
        assert statuses == ["cancelled", "succeeded"]
        assert s.scalars(select(ImageSet.name)).all() == ["later"]
