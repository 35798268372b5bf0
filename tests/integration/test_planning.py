"""The study form's planning region: power from defaults and from a pilot study, and bad values answered
with a message in the fragment, never an error page."""

from __future__ import annotations

import re

import pytest

from tests import factories


def test_the_form_shows_the_plan_and_the_fragment_follows_the_inputs(session, store, people, signed_in):
    researcher = signed_in("researcher")
    page = researcher.get("/studies/new").text
    assert 'id="plan"' in page and "Cases for 80 % power" in page and "defaults" in page

    small = researcher.get("/planning", params={"n_cases": 20, "reader_ids": [1, 2], "plan_auc": "0.6"}).text
    large = researcher.get(
        "/planning", params={"n_cases": 400, "reader_ids": [1, 2, 3], "plan_auc": "0.6"}
    ).text

    def shown(html: str) -> float:
        return float(re.search(r'id="plan-power">([\d.]+) %', html).group(1))

    assert shown(small) < shown(large)
    # More readers never need more cases: the table falls from left to right.
    row = re.search(r"Cases for 80 % power</th>(.*?)</tr>", large, re.S).group(1)
    needed = [int(v) for v in re.findall(r"<td>(\d+)</td>", row)]
    assert needed == sorted(needed, reverse=True) and len(needed) >= 5


@pytest.mark.parametrize(
    "params",
    [
        {"plan_auc": "0.4"},
        {"plan_auc": "abc"},
        {"plan_auc": "nan"},
        {"n_cases": "-3"},
        {"n_cases": "9" * 40},
        {"ratio_real": "0"},
        {"plan_pilot": "999999"},
        {"plan_pilot": "x"},
        {"n_cases": "²"},
        {"plan_auc": "1e400"},
    ],
)
def test_bad_planning_values_get_a_message(signed_in, params):
    r = signed_in("researcher").get("/planning", params=params)
    assert r.status_code == 200 and 'class="error"' in r.text


def test_a_pilot_study_supplies_the_components(session, store, people, signed_in):
    readers = [people["reader"], people["reader2"]]
    study = factories.launched_study(
        session, store, readers=readers, creator=people["researcher"], n_cases=12
    )
    session.commit()
    for reader, skill in zip(readers, (0.6, 0.3), strict=True):
        factories.answer_cases(session, study.id, reader, cases=12, skill=skill)
    r = signed_in("researcher").get(
        "/planning", params={"plan_pilot": study.id, "n_cases": 60, "reader_ids": [1, 2]}
    )
    assert "pilot “Test study”: 2 readers × 12 cases" in r.text and 'id="plan-power"' in r.text
    assert signed_in("reader").get("/planning").status_code == 403
    # A design with another mix of real and synthetic cases than the pilot's is told so.
    skewed = signed_in("researcher").get(
        "/planning", params={"plan_pilot": study.id, "n_cases": 60, "ratio_real": 3, "reader_ids": [1, 2]}
    )
    assert "approximate" in skewed.text


def test_a_pilot_whose_readers_never_erred_gets_a_message(session, store, people, signed_in):
    readers = [people["reader"], people["reader2"]]
    study = factories.launched_study(
        session, store, readers=readers, creator=people["researcher"], n_cases=12
    )
    session.commit()
    for reader in readers:
        factories.answer_cases(session, study.id, reader, cases=12, skill=1.0)  # always right, always sure
    r = signed_in("researcher").get("/planning", params={"plan_pilot": study.id, "reader_ids": [1, 2]})
    assert r.status_code == 200 and "no reader ever erred" in r.text
