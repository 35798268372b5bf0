"""The leakage gate at launch, through HTTP: leaky synthetic files keep a study a draft, with the reason."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from app.domain import studies
from app.persistence.models import Study
from app.persistence.repositories import studies as studies_repo
from tests import factories
from tests.factories import compressed, with_text


def _draft(session, store, people, *, n_cases: int = 12) -> Study:
    real = factories.phantom_set(session, store, name="real", kind="real", seed=0)
    syn = factories.phantom_set(session, store, name="synthetic", kind="synthetic", seed=1)
    design = studies.StudyDesign(
        title="Gate",
        image_set_ids=[real.id, syn.id],
        n_cases=n_cases,
        resolution=64,
        reader_ids=[people["reader"].id],
        seed=5,
    )
    return studies.create_study(session, store, design, actor_id=people["researcher"].id)


def _leak(session, store, study: Study, change) -> None:
    """Replace every synthetic case's file as a faulty pipeline would have written it."""
    for case in studies_repo.cases(session, study.id):
        if case.truth == "synthetic":
            data = change(store.get(case.sha256))
            case.sha256 = hashlib.sha256(data).hexdigest()
            store.put(case.sha256, data)
    session.commit()


def _resized(png: bytes) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).resize((80, 80)).save(out, format="PNG")
    return out.getvalue()


def _launch(signed_in, study_id: int):
    researcher = signed_in("researcher")
    page = researcher.get(f"/studies/{study_id}")
    return researcher.post(f"/studies/{study_id}/launch", data={"csrf_token": factories.csrf_of(page.text)})


def test_metadata_on_synthetic_files_blocks_launch(session, store, people, signed_in):
    study = _draft(session, store, people)
    _leak(session, store, study, with_text)
    r = _launch(signed_in, study.id)
    assert r.status_code == 200
    assert "Launch blocked" in r.text and "tEXt" in r.text and "a reader could tell them" in r.text
    session.expire_all()
    stored = session.get(Study, study.id)
    assert stored.status == "draft" and stored.leakage["passed"] is False
    assert signed_in("reader").get("/read").text.count("Gate") == 0  # nothing to read: not launched


def test_another_size_blocks_launch(session, store, people, signed_in):
    study = _draft(session, store, people)
    _leak(session, store, study, _resized)
    r = _launch(signed_in, study.id)
    assert "Launch blocked" in r.text and "80×80" in r.text
    session.expire_all()
    assert session.get(Study, study.id).status == "draft"


def test_another_byte_length_blocks_launch(session, store, people, signed_in):
    study = _draft(session, store, people)
    _leak(session, store, study, compressed)  # same pixels, header and chunks, compressed by another tool
    r = _launch(signed_in, study.id)
    assert "Launch blocked" in r.text and "by the download" in r.text and "Odd lengths" in r.text
    session.expire_all()
    assert session.get(Study, study.id).status == "draft"


def test_the_normal_path_launches_and_shows_the_report(session, store, people, signed_in):
    study = _draft(session, store, people)
    session.commit()
    r = _launch(signed_in, study.id)
    assert "launched" in r.text and "Passed" in r.text and "cross-validated AUC" in r.text
    session.expire_all()
    stored = session.get(Study, study.id)
    assert stored.status == "launched" and stored.leakage["passed"] is True


def test_check_now_returns_the_fragment_and_an_edit_forgets_the_report(session, store, people, signed_in):
    study = _draft(session, store, people)
    session.commit()
    researcher = signed_in("researcher")
    page = researcher.get(f"/studies/{study.id}")
    assert "Not checked yet" in page.text
    r = researcher.post(
        f"/studies/{study.id}/leakage",
        data={"csrf_token": factories.csrf_of(page.text)},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and r.text.lstrip().startswith("<section") and "Passed" in r.text
    assert signed_in("reader").post(f"/studies/{study.id}/leakage").status_code in (403, 400)
    session.expire_all()
    study = session.get(Study, study.id)
    assert study.leakage["n_real"] == 6
    design = studies.StudyDesign(
        title="Gate",
        image_set_ids=[s.id for s in studies_repo.image_sets(session, study.id)],
        n_cases=8,
        resolution=64,
    )
    studies.update_study(session, store, study.id, design, actor_id=people["researcher"].id)
    assert study.leakage is None  # the cases were drawn again: the report no longer describes them
