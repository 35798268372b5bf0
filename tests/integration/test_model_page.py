"""A model's page: the Fréchet distance per checkpoint of a GAN a real worker trained, and who may see it."""

from __future__ import annotations

import json
import math
import re

from sqlalchemy import func, select

from app.persistence.db import get_sessionmaker
from app.persistence.model_store import BUNDLED
from app.persistence.models import Run
from tests import factories
from tests.factories import TINY_GAN, start_tiny_training, wait_for

EXTRACTOR = "phantom-classifier-64"
DEMO_MODEL = "phantom-pggan-64"


def test_training_with_an_extractor_publishes_its_fd_history_and_the_model_page_charts_it(
    signed_in, workers, session, store, store_dir
):
    admin = signed_in("admin")
    # 4 -> 8 px, 2048 images: checkpoints at 512, 1024 and 1536, then the end
    run_id = start_tiny_training(
        admin,
        session,
        store,
        model_name="tiny-fd",
        final_stable_images="1024",
        checkpoint_every="512",
        fd_classifier=EXTRACTOR,
        fd_images="16",
    )
    workers.start()
    run = wait_for(run_id, lambda r: r.status not in ("queued", "running"), workers)
    assert run.status == "succeeded", run.error

    manifest = json.loads((store_dir / "models" / "tiny-fd" / "manifest.json").read_text())
    history = manifest["fd_history"]
    assert [p["images_seen"] for p in history] == [512, 1024, 1536, 2048]
    assert [p["resolution"] for p in history] == [4, 8, 8, 8]
    # 16 asked, but 24 films hold two matched halves of 12: generates, half A and half B have 12 each.
    assert all(
        math.isfinite(p["fd"]) and p["fd"] >= 0 and p["baseline"] > 0 and p["n"] == 12 for p in history
    )
    bundled = json.loads((BUNDLED / EXTRACTOR / "manifest.json").read_text())
    assert manifest["fd_extractor"]["name"] == EXTRACTOR
    assert manifest["fd_extractor"]["sha256"] == bundled["sha256"]
    assert run.outputs["fd"]["images_seen"] == 2048

    page = admin.get("/models/tiny-fd")
    assert page.status_code == 200
    chart = re.search(r'<svg[^>]*class="chart fd-chart".*?</svg>', page.text, re.S)
    assert chart and chart.group(0).count("<circle") == 4 and 'class="baseline"' in chart.group(0)
    table = page.text.split('class="table compact fd-points"')[1].split("</table>")[0]
    assert [int(x.replace(",", "")) for x in re.findall(r"<tr><td>([\d,]+)", table)] == [
        512,
        1024,
        1536,
        2048,
    ]
    assert f"{history[-1]['fd']:.4g}" in table and EXTRACTOR in page.text
    assert admin.get("/models/tiny-fd/samples.png").status_code == 200  # the run's last grid came along
    assert f'href="/runs/{run_id}"' in page.text

    listing = admin.get("/models").text
    assert 'href="/models/tiny-fd"' in listing and 'href="/extractors"' in listing
    run_page = admin.get(f"/runs/{run_id}").text
    assert 'class="chart fd-chart"' in run_page and "Fréchet distance at" in run_page  # chart and log lines
    assert 'href="/models/tiny-fd"' in run_page


def test_an_unknown_extractor_is_refused_when_the_run_is_created(signed_in, session, store):
    admin = signed_in("admin")
    images = factories.phantom_set(session, store, name="train", kind="real", n=8, size=32)
    session.commit()
    page = admin.get("/runs/new?kind=train_gan")
    assert '<select name="fd_classifier"' in page.text and f'value="{EXTRACTOR}"' in page.text
    data = {"csrf_token": factories.csrf_of(page.text), "kind": "train_gan", "request_key": "fd-1"}
    data |= {"image_set_id": str(images.id), "model_name": "never", **TINY_GAN}
    r = admin.post("/runs", data={**data, "fd_classifier": "no-such-classifier"})
    assert r.status_code == 422 and "no such classifier" in r.text
    r = admin.post("/runs", data={**data, "fd_classifier": DEMO_MODEL})  # a generator is no extractor
    assert r.status_code == 422 and "no such classifier" in r.text
    r = admin.post("/runs", data={**data, "fd_inception": "true"})  # FID, but no weights registered
    assert r.status_code == 422 and "no Inception weights are registered" in r.text
    with get_sessionmaker()() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 0


def test_the_model_page_is_for_staff_and_404s_for_an_unknown_model(signed_in):
    admin, researcher, reader = signed_in("admin"), signed_in("researcher"), signed_in("reader")
    page = researcher.get(f"/models/{DEMO_MODEL}")
    assert page.status_code == 200 and "Not measured for this model" in page.text
    assert f"/models/{DEMO_MODEL}/samples.png" in page.text and "Make default" not in page.text
    assert reader.get(f"/models/{DEMO_MODEL}").status_code == 403
    assert admin.get("/models/no-such-model").status_code == 404
    assert admin.get(f"/models/{EXTRACTOR}").status_code == 404  # a classifier is not a generator
