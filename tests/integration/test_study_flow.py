"""The whole loop: image sets -> study -> launch -> readings -> results -> CSV, through HTTP."""

from __future__ import annotations

import csv
import io
import re

from tests import factories


def _study_key(session, served: str) -> str:
    """The study-level case id the export uses for an id a reader was served (each reader has their own)."""
    from app.domain.readings import case_by_opaque

    return case_by_opaque(session, served).opaque_id


def test_import_study_read_results_export(session, store, people, signed_in):
    real = factories.phantom_set(session, store, name="Real phantoms", kind="real", n=10)
    syn = factories.phantom_set(session, store, name="Synthetic phantoms", kind="synthetic", n=10, seed=1)
    session.commit()

    researcher = signed_in("researcher")
    form_page = researcher.get("/studies/new")
    assert form_page.status_code == 200
    r = researcher.post(
        "/studies",
        data={
            "csrf_token": factories.csrf_of(form_page.text),
            "title": "Loop study",
            "instructions": "Judge each film.",
            "image_set_ids": [str(real.id), str(syn.id)],
            "n_cases": "6",
            "ratio_real": "1",
            "ratio_synthetic": "1",
            "resolution": "64",
            "ask_findings": "on",
            "practice_cases": "0",
            "reader_ids": [str(people["reader"].id), str(people["reader2"].id)],
            "seed": "42",
        },
    )
    assert r.status_code == 200, r.text
    study_id = int(re.search(r"/studies/(\d+)", str(r.url)).group(1))
    assert "draft" in r.text
    r = researcher.post(f"/studies/{study_id}/launch", data={"csrf_token": factories.csrf_of(r.text)})
    assert r.status_code == 200 and "launched" in r.text

    reader = signed_in("reader")
    assert "Loop study" in reader.get("/read").text
    answered = []
    for i in range(6):
        case_id = factories.current_case(reader, study_id)
        img = reader.get(f"/img/{case_id}")
        assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        assert img.content.startswith(b"\x89PNG")
        r = factories.answer_case(
            reader,
            study_id,
            case_id,
            "synthetic" if i % 2 else "real",
            3 + i % 3,
            findings=["Effusion"] if i == 0 else [],
        )
        assert r.status_code == 200, r.text
        answered.append(case_id)
    assert len(set(answered)) == 6
    done = reader.get(f"/read/{study_id}/case")
    assert str(done.url).endswith(f"/read/{study_id}/done")
    assert "Thank you" in done.text
    assert "%" not in done.text.split("<main")[1]  # no score on the end page

    results = researcher.get(f"/studies/{study_id}/results")
    assert results.status_code == 200
    assert "Pooled" in results.text and "data-vega-spec" in results.text

    export = researcher.get(f"/studies/{study_id}/export.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 6
    assert {r["reader_id"] for r in rows} == {people["reader"].pseudonym}
    keys = [_study_key(session, served) for served in answered]
    assert {r["case_id"] for r in rows} == set(keys) and not set(keys) & set(answered)
    first = next(r for r in rows if r["case_id"] == keys[0])
    assert first["verdict"] == "real" and first["confidence"] == "3" and first["marked_Effusion"] == "1"
    assert first["reader_years_experience"] == "7" and first["reader_specialty"] == "Radiology"
    assert first["reader_board_certified"] == "true"
    assert first["truth"] in ("real", "synthetic") and first["practice"] == "false"
    assert first["correct"] == ("true" if first["truth"] == "real" else "false")
    assert int(first["duration_ms"]) >= 0 and first["active_ms"] == "1500"
    assert sorted(int(r["position"]) for r in rows) == list(range(6))

    codebook = researcher.get(f"/studies/{study_id}/codebook.csv")
    book = list(csv.DictReader(io.StringIO(codebook.text)))
    defined = {b["column"] for b in book}
    assert set(rows[0].keys()) <= defined
    assert "Positive class = synthetic" in codebook.text


def test_practice_cases_give_feedback_and_are_excluded(session, store, people, signed_in):
    study = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], n_cases=4, practice=2
    )
    session.commit()
    reader = signed_in("reader")
    case_id = factories.current_case(reader, study.id)
    r = factories.answer_case(reader, study.id, case_id, "real", 2)
    assert "This practice image was" in r.text
    for _ in range(5):
        case_id = factories.current_case(reader, study.id)
        if "Thank you" in reader.get(f"/read/{study.id}/case").text:
            break
        factories.answer_case(reader, study.id, case_id, "synthetic", 4)
    researcher = signed_in("researcher")
    rows = list(csv.DictReader(io.StringIO(researcher.get(f"/studies/{study.id}/export.csv").text)))
    assert [r["practice"] for r in sorted(rows, key=lambda r: int(r["position"]))] == ["true"] * 2 + [
        "false"
    ] * 4
    page = researcher.get(f"/studies/{study.id}/results").text
    # Pooled n counts the four main readings only.
    assert re.search(r'<tr class="pooled"><th>Pooled</th><td></td><td>4</td>', page)


def test_reload_resumes_at_the_same_case(session, store, people, signed_in):
    study = factories.launched_study(session, store, readers=[people["reader"]], creator=people["researcher"])
    session.commit()
    reader = signed_in("reader")
    first = factories.current_case(reader, study.id)
    assert factories.current_case(reader, study.id) == first  # reload: same case
    factories.answer_case(reader, study.id, first, "real", 5)
    second = factories.current_case(reader, study.id)
    assert second != first
    fresh = signed_in("reader")  # another browser of the same reader
    assert factories.current_case(fresh, study.id) == second


def test_revising_the_previous_answer_where_allowed(session, store, people, signed_in):
    study = factories.launched_study(
        session,
        store,
        readers=[people["reader"]],
        creator=people["researcher"],
        allow_revision=True,
        ask_free_text=True,
    )
    session.commit()
    reader = signed_in("reader")
    first = factories.current_case(reader, study.id)
    factories.answer_case(reader, study.id, first, "real", 2, findings=["Mass"])
    second = factories.current_case(reader, study.id)
    assert 'data-shortcut="u"' in reader.get(f"/read/{study.id}/case").text
    page = reader.get(f"/read/{study.id}/revise")
    assert f'name="case_id" value="{first}"' in page.text and "revising" in page.text
    assert re.search(r'value="real" data-key="r" checked', page.text)
    assert re.search(r'value="Mass" data-key="[a-z]" checked', page.text)
    # Without the revise flag (a stale tab) the first answer stands; with it, a revision is stored.
    stale = factories.answer_case(reader, study.id, first, "synthetic", 5, token="stale-token-1")
    assert "already answered" in stale.text
    r = factories.answer_case(
        reader,
        study.id,
        first,
        "synthetic",
        5,
        token="revision-token-1",
        revise="1",
        free_text='=HYPERLINK("x")',
    )
    assert r.status_code == 200
    assert factories.current_case(reader, study.id) == second  # back to where the reader was
    researcher = signed_in("researcher")
    rows = list(csv.DictReader(io.StringIO(researcher.get(f"/studies/{study.id}/export.csv").text)))
    key = _study_key(session, first)
    revs = sorted((r for r in rows if r["case_id"] == key), key=lambda r: int(r["revision"]))
    assert [(r["revision"], r["verdict"]) for r in revs] == [("0", "real"), ("1", "synthetic")]
    assert [r["is_latest"] for r in revs] == ["false", "true"]
    assert revs[1]["free_text"] == '\'=HYPERLINK("x")'  # not a live formula in a spreadsheet
    assert revs[1]["duration_ms"] == ""
    assert revs[1]["supersedes_reading"] == revs[0]["reading_id"]


def test_revising_is_refused_where_not_allowed(session, store, people, signed_in):
    study = factories.launched_study(session, store, readers=[people["reader"]], creator=people["researcher"])
    session.commit()
    reader = signed_in("reader")
    first = factories.current_case(reader, study.id)
    factories.answer_case(reader, study.id, first, "real", 2)
    assert 'data-shortcut="u"' not in reader.get(f"/read/{study.id}/case").text
    assert reader.get(f"/read/{study.id}/revise").status_code == 409
    r = factories.answer_case(reader, study.id, first, "synthetic", 5, token="sneaky-token-1")
    assert "already answered" in r.text
    researcher = signed_in("researcher")
    rows = list(csv.DictReader(io.StringIO(researcher.get(f"/studies/{study.id}/export.csv").text)))
    assert [(r["case_id"], r["verdict"]) for r in rows] == [(_study_key(session, first), "real")]


def test_unlabelled_synthetic_sets_export_blank_labels(session, store, people, signed_in):
    from app.domain.importers import ImportSpec, SourceImage, import_images
    from app.ml import phantoms

    real = factories.phantom_set(session, store, name="real", kind="real")
    spec = ImportSpec(name="unlabelled", kind="synthetic", label_schema=(), resolution=64, source="sampling")
    items = [SourceImage(name=f"s{p.index}", pixels=p.image) for p in phantoms.generate(12, size=64, seed=9)]
    synthetic = import_images(session, store, spec, items, actor_id=None)
    study = factories.launched_study(
        session,
        store,
        readers=[people["reader"]],
        creator=people["researcher"],
        real=real,
        synthetic=synthetic,
        n_cases=4,
    )
    session.commit()
    reader = signed_in("reader")
    for _ in range(4):
        factories.answer_case(reader, study.id, factories.current_case(reader, study.id), "real", 3)
    researcher = signed_in("researcher")
    assert "Unlabelled" in researcher.get(f"/image-sets/{synthetic.id}").text
    rows = list(csv.DictReader(io.StringIO(researcher.get(f"/studies/{study.id}/export.csv").text)))
    for row in rows:
        labels = {k: v for k, v in row.items() if k.startswith("label_")}
        if row["truth"] == "synthetic":
            assert set(labels.values()) == {""}
        else:
            assert set(labels.values()) <= {"0", "1"}
