"""Unreadable flags and viewing conditions through HTTP: stored with the answer, exported, counted apart
from the figures, summarised on the results page; bad values get a clear error and store nothing."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from app.domain import planning
from app.domain.analysis import analyse_reads, jsonable
from app.domain.errors import Invalid
from app.domain.exports import reads_from_export
from app.persistence.models import Reading
from tests import factories

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
)
VIEWING = {
    "screen_w": "1920",
    "screen_h": "1080",
    "window_w": "1440",
    "window_h": "900",
    "device_pixel_ratio": "2",
    "zoom_at_submit": "1.5",
    "one_to_one_reached": "1",
    "one_to_one_ms": "4200",
}


def _post(client, study_id: int, **fields):
    """Submit the reader's current case with `fields` (a field set to None is left out)."""
    page = client.get(f"/read/{study_id}/case")
    assert page.status_code == 200, page.text
    case_id = re.search(r'name="case_id" value="([^"]+)"', page.text).group(1)
    data = {"case_id": case_id, "client_token": f"tok-{case_id}", "csrf_token": factories.csrf_of(page.text)}
    data.update({k: v for k, v in fields.items() if v is not None})
    return client.post(f"/read/{study_id}/case", data=data, headers={"User-Agent": CHROME})


@pytest.fixture
def study(session, store, people):
    s = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], min_window_w=1200
    )
    session.commit()
    return s


def test_unreadable_cases_are_stored_exported_and_left_out_of_every_figure(session, study, signed_in):
    reader = signed_in("reader")
    answers = [
        {"unreadable_reason": "quality", **VIEWING},
        {"verdict": "real", "confidence": "4", **VIEWING},
        {"verdict": "synthetic", "confidence": "5", **VIEWING, "window_w": "1000", "window_h": "700"},
        {"unreadable_reason": "display", "one_to_one_reached": "0", "one_to_one_ms": "0"},
        {"verdict": "synthetic", "confidence": "2", **VIEWING},
        {"verdict": "real", "confidence": "1", **VIEWING},
    ]
    for fields in answers:
        r = _post(reader, study.id, **fields)
        assert r.status_code == 200, r.text
    assert str(reader.get(f"/read/{study.id}/case").url).endswith("/done")  # a flag answers the case

    researcher = signed_in("researcher")
    export = researcher.get(f"/studies/{study.id}/export.csv").text
    rows = list(csv.DictReader(io.StringIO(export)))
    flagged = [r for r in rows if r["unreadable"] == "true"]
    assert sorted(r["unreadable_reason"] for r in flagged) == ["display", "quality"]
    assert all(r["verdict"] == r["confidence"] == r["score"] == r["correct"] == "" for r in flagged)
    first = next(r for r in rows if r["position"] == "0")
    assert (first["screen_width_px"], first["window_height_px"], first["device_pixel_ratio"]) == (
        "1920",
        "900",
        "2.0",
    )
    assert (first["zoom_at_submit"], first["reached_one_to_one"], first["one_to_one_ms"]) == (
        "1.5",
        "true",
        "4200",
    )
    assert "Chrome/156" in first["browser"]
    book = {
        b["column"]
        for b in csv.DictReader(io.StringIO(researcher.get(f"/studies/{study.id}/codebook.csv").text))
    }
    assert set(rows[0]) <= book

    # The export's analysis is the page's: the flags are counted, and the figures are those of the four
    # answered cases alone, as if the flagged ones had never been shown.
    reads, findings, asked = reads_from_export(export)
    analysis = analyse_reads(reads, findings=findings, ask_findings=asked)
    answered = [r for r in reads if r.unreadable_reason is None]
    alone = analyse_reads(answered, findings=findings, ask_findings=asked)
    assert analysis.n_readings == 4 and analysis.unreadable == {"display": 1, "quality": 1}
    assert jsonable(analysis.pooled) == jsonable(alone.pooled)
    assert jsonable(analysis.mrmc) == jsonable(alone.mrmc)
    imrmc = researcher.get(f"/studies/{study.id}/ratings.imrmc").text
    assert imrmc.count(",realism,") == 4
    with pytest.raises(Invalid, match="two readers"):  # the pilot planner skips the flags too
        planning.pilot_components(session, study.id)

    page = researcher.get(f"/studies/{study.id}/results").text
    assert "4 readings." in page and "2 readings flagged unreadable" in page
    assert "image quality too poor to judge 1" in page
    viewing = page.split('id="viewing"')[1]
    assert "5 of 6 readings" in viewing  # all but the flag sent without a window
    assert "1 reading in a window smaller than" in viewing and "Chrome 156 (6)" in viewing
    assert "Seen at 1:1 or larger" in viewing and "4.2 s" in viewing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"unreadable_reason": "quality", "verdict": "real", "confidence": "3"}, "takes no verdict"),
        ({"unreadable_reason": "bored"}, "Unknown reason"),
        ({"confidence": "3"}, "Choose a verdict"),
        ({"verdict": "real", "confidence": "3", "screen_w": "-5"}, "screen_w must be"),
        ({"verdict": "real", "confidence": "3", "window_h": "1.5"}, "window_h must be a whole number"),
        ({"verdict": "real", "confidence": "3", "device_pixel_ratio": "nan"}, "device_pixel_ratio must be"),
        ({"verdict": "real", "confidence": "3", "zoom_at_submit": "1e9"}, "zoom_at_submit must be"),
        ({"verdict": "real", "confidence": "3", "one_to_one_ms": "99999999999"}, "one_to_one_ms must be"),
        ({"verdict": "real", "confidence": "3", "one_to_one_reached": "yes"}, "one_to_one_reached"),
    ],
)
def test_bad_flags_and_viewing_values_get_a_clear_error_and_store_nothing(
    session, study, signed_in, fields, message
):
    r = _post(signed_in("reader"), study.id, **fields)
    assert r.status_code in (400, 422), r.text
    assert message in r.text
    assert session.scalar(select(func.count()).select_from(Reading)) == 0


def test_a_minimum_window_is_validated_stored_and_announced_before_the_first_case(
    session, store, people, signed_in
):
    real = factories.phantom_set(session, store, name="Real", kind="real", n=6)
    syn = factories.phantom_set(session, store, name="Synthetic", kind="synthetic", n=6, seed=1)
    session.commit()
    researcher = signed_in("researcher")

    def create(**extra):
        form = researcher.get("/studies/new")
        data = {
            "csrf_token": factories.csrf_of(form.text),
            "title": "Window study",
            "image_set_ids": [str(real.id), str(syn.id)],
            "n_cases": "4",
            "resolution": "64",
            "reader_ids": [str(people["reader"].id)],
            "retest_percent": "0",
            **extra,
        }
        return researcher.post("/studies", data=data)

    r = create(min_window_w="150")
    assert r.status_code == 422 and "minimum window width must be from 200" in r.text
    r = create(min_window_w="1280", min_window_h="800")
    assert r.status_code == 200, r.text
    assert "1280 × 800 px" in r.text  # the design lists it
    study_id = int(re.search(r"/studies/(\d+)", str(r.url)).group(1))
    researcher.post(f"/studies/{study_id}/launch", data={"csrf_token": factories.csrf_of(r.text)})
    page = signed_in("reader").get(f"/read/{study_id}").text
    assert 'data-min-window-w="1280"' in page and 'data-min-window-h="800"' in page
