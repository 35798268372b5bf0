"""The results page's analysis on a real study: MRMC from the stored readings, agreement with its n, and the
same figures from the export through `cxrlab analyse mrmc` (one code path)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys

import pytest
from click.testing import CliRunner

from app.cli.analyse import analyse_group
from app.domain import readings, results
from app.domain.readings import Answer
from app.persistence.db import get_engine
from app.persistence.repositories import studies as study_repo
from app.web.routes import results as results_routes
from tests import factories


def test_results_page_and_export_give_the_same_mrmc(session, store, people, signed_in, tmp_path):
    third = factories.user(session, "reader", "reader3@test.org")
    readers = [people["reader"], people["reader2"], third]
    real = factories.phantom_set(session, store, name="real", kind="real", n=12, seed=0)
    synthetic = factories.phantom_set(session, store, name="synthetic", kind="synthetic", n=12, seed=1)
    study = factories.launched_study(
        session,
        store,
        readers=readers,
        creator=people["researcher"],
        n_cases=16,
        real=real,
        synthetic=synthetic,
    )
    session.commit()
    factories.answer_cases(session, study.id, readers[0], cases=16, skill=0.6)
    factories.answer_cases(session, study.id, readers[1], cases=16, skill=0.2)
    factories.answer_cases(session, study.id, third, cases=9, skill=0.0)  # stopped early

    res = results.study_results(session, study).analysis
    assert res.agreement.fleiss_cases < 16 <= res.agreement.verdicts.n_items  # alpha uses every case
    assert res.agreement.readers == sorted(u.pseudonym for u in readers)
    level = res.mrmc.auc.analyses["RRRC"].levels[0]
    assert res.mrmc.auc.covariance == "delong"  # one reader read only part of the cases

    page = signed_in("researcher").get(f"/studies/{study.id}/results").text
    assert f"Readers' mean AUC <strong>{level.estimate:.3f}</strong>" in page
    assert re.search(rf"only the {res.agreement.fleiss_cases} cases read by all 3 readers", page)
    assert f"{res.agreement.verdicts.n_items} cases read by two or more readers" in page

    export = signed_in("researcher").get(f"/studies/{study.id}/export.csv").text
    kept = set(res.mrmc.auc.readers)
    lines = ["reader,case,truth,rating"] + [
        f"{r['reader_id']},{r['case_id']},{int(r['truth'] == 'synthetic')},{r['score']}"
        for r in csv.DictReader(io.StringIO(export))
        if r["reader_id"] in kept
    ]
    (tmp_path / "ratings.csv").write_text("\n".join(lines) + "\n")
    out = CliRunner().invoke(analyse_group, ["mrmc", str(tmp_path / "ratings.csv"), "--json"])
    assert out.exit_code == 0, out.output
    cli = json.loads(out.output)
    # The same function on the same numbers; the export lists readings in another order, so sums may
    # differ in the last bit.
    (cli_level,) = cli["analyses"]["RRRC"]["levels"]
    same = pytest.approx
    assert (cli_level["estimate"], cli_level["low"], cli_level["high"]) == same(
        (level.estimate, level.low, level.high)
    )
    assert cli_level["p"] == same(level.p, rel=1e-9)
    for name, value in res.mrmc.auc.to_dict()["components"].items():
        assert cli["components"][name] == (None if value is None else same(value, rel=1e-9)), name


def test_page_export_and_analysis_json_agree(session, store, people, signed_in, tmp_path):
    """analysis.json from the database = `cxrlab analyse study` on the export alone, to the last digit."""
    third = factories.user(session, "reader", "reader3@test.org")
    readers = [people["reader"], people["reader2"], third]
    creator = people["researcher"]
    study = factories.launched_study(session, store, readers=readers, creator=creator, n_cases=12)
    session.commit()
    for reader, cases, skill in zip(readers, (12, 12, 7), (0.5, 0.2, 0.0), strict=True):
        factories.answer_cases(session, study.id, reader, cases=cases, skill=skill)
    researcher = signed_in("researcher")

    page_json = researcher.get(f"/studies/{study.id}/analysis.json")
    assert page_json.status_code == 200 and "attachment" in page_json.headers["content-disposition"]
    from_page = page_json.json()
    (tmp_path / "export.csv").write_text(researcher.get(f"/studies/{study.id}/export.csv").text)
    out = CliRunner().invoke(analyse_group, ["study", str(tmp_path / "export.csv"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == from_page
    assert from_page["n_readings"] == 31 and set(from_page["readers"]) == {u.pseudonym for u in readers}
    assert from_page["mrmc"]["auc"]["analyses"]["RRRC"]["levels"][0]["estimate"] is not None
    assert len(from_page["realism"]["by_finding"]) == len(study.findings)

    text = CliRunner().invoke(analyse_group, ["study", str(tmp_path / "export.csv")])
    assert text.exit_code == 0 and "Krippendorff's alpha (verdicts)" in text.output

    imrmc = researcher.get(f"/studies/{study.id}/ratings.imrmc").text.splitlines()
    header = dict(line.split(":", 1) for line in imrmc[1:5])
    assert imrmc[5] == "BEGIN DATA:" and header["NR"] == "3" and header["NM"] == "1"
    truth_rows = [line for line in imrmc[6:] if line.startswith("-1,")]
    assert len(truth_rows) == int(header["N0"]) + int(header["N1"]) == 12
    scores = [line.split(",") for line in imrmc[6 + len(truth_rows) :]]
    assert len(scores) == 31 and all(1 <= int(s[3]) <= 10 and s[2] == "realism" for s in scores)

    svg = researcher.get(f"/studies/{study.id}/figures/forest.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and svg.text.lstrip().startswith("<svg")
    png = researcher.get(f"/studies/{study.id}/figures/roc.png")
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    for bad in ("nothing.svg", "roc.pdf", "roc.svg.png", "..%2Fetc.svg"):
        assert researcher.get(f"/studies/{study.id}/figures/{bad}").status_code == 404

    report = researcher.get(f"/studies/{study.id}/report").text
    assert "Methods" in report and "Obuchowski" in report and "12 cases, real:synthetic 1:1" in report


def test_export_of_something_else_is_refused(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    out = CliRunner().invoke(analyse_group, ["study", str(tmp_path / "x.csv")])
    assert out.exit_code != 0 and "not a study export" in out.output
    (tmp_path / "y.csv").write_bytes(b"\xff\xfe\x00bad")
    out = CliRunner().invoke(analyse_group, ["study", str(tmp_path / "y.csv")])
    assert out.exit_code != 0 and "not UTF-8" in out.output


def test_retest_repeats_come_back_unannounced_and_pair_up(session, store, people, signed_in, tmp_path):
    """A quarter of the cases come back under new ids; answers pair up in the export and the analysis."""
    readers = [people["reader"], people["reader2"]]
    creator = people["researcher"]
    study = factories.launched_study(
        session, store, readers=readers, creator=creator, n_cases=12, retest_percent=25, retest_gap=3
    )
    session.commit()
    seen: dict[str, list[str]] = {}
    for reader in readers:
        served = []
        while (view := readings.current_case(session, study.id, reader.id)) is not None:
            served.append(view.opaque_id)
            truth = readings.case_by_opaque(session, view.opaque_id).truth
            answer = Answer(view.opaque_id, f"tok-{reader.id}-{len(served):04d}", truth, 4)
            readings.submit(session, study.id, reader.id, answer)
            session.commit()
        seen[reader.pseudonym] = served
    for served in seen.values():
        assert len(served) == 15 and len(set(served)) == 15  # 12 cases + 3 repeats, each under its own id
    # Every id is one reader's alone: no id is shared between readers or is the case's study-level key,
    # so readers cannot compare notes by id, and each is served to its reader only.
    first, second = (set(seen[r.pseudonym]) for r in readers)
    study_keys = {c.opaque_id for c in study_repo.cases(session, study.id)}
    assert not first & second and not (first | second) & study_keys
    first_reader, second_reader = signed_in("reader"), signed_in("reader2")
    some = seen[people["reader"].pseudonym][0]
    assert first_reader.get(f"/img/{some}").status_code == 200
    assert second_reader.get(f"/img/{some}").status_code == 404
    assert first_reader.get(f"/img/{next(iter(study_keys))}").status_code == 404  # not the study's key

    researcher = signed_in("researcher")
    export = researcher.get(f"/studies/{study.id}/export.csv").text
    rows = list(csv.DictReader(io.StringIO(export)))
    assert sorted(r["presentation"] for r in rows).count("2") == 6
    assert {r["case_id"] for r in rows if r["presentation"] == "2"} <= {r["case_id"] for r in rows}
    # The export keys cases by the study-level id, so both readers' answers on one case pair up.
    assert {r["case_id"] for r in rows} == study_keys
    by_reader = {(r["reader_id"], r["case_id"]) for r in rows if r["presentation"] == "1"}
    assert len(by_reader) == 24 and len({case for _, case in by_reader}) == 12
    analysis = researcher.get(f"/studies/{study.id}/analysis.json").json()
    assert analysis["n_readings"] == 24  # repeats are left out of every figure but test-retest
    assert analysis["retest"]["pairs"] == 6 and analysis["retest"]["kappa"] == 1.0
    (tmp_path / "export.csv").write_text(export)
    out = CliRunner().invoke(analyse_group, ["study", str(tmp_path / "export.csv"), "--json"])
    assert json.loads(out.output) == analysis
    page = researcher.get(f"/studies/{study.id}/results").text
    assert "Test–retest" in page and "Over 6 films shown twice" in page


@pytest.mark.slow
def test_the_report_as_pdf(session, store, people, signed_in, tmp_path):
    readers = [people["reader"], people["reader2"]]
    study = factories.launched_study(session, store, readers=readers, creator=people["researcher"], n_cases=8)
    session.commit()
    for reader in readers:
        factories.answer_cases(session, study.id, reader, cases=8, skill=0.5)
    r = signed_in("researcher").get(f"/studies/{study.id}/report.pdf")
    if r.status_code == 503:  # no Pango on this machine: the reason is given instead
        assert "Pango" in r.text
        return
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-") and len(r.content) > 20_000
    (tmp_path.parent / "report.pdf").write_bytes(r.content)
    # WeasyPrint switches on Pillow's LOAD_TRUNCATED_IMAGES when imported: it must never load in this process.
    from PIL import ImageFile

    assert not ImageFile.LOAD_TRUNCATED_IMAGES and "weasyprint" not in sys.modules


@pytest.mark.slow
def test_the_pdf_is_laid_out_with_no_connection_held(session, store, people, signed_in, monkeypatch):
    study = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], n_cases=6
    )
    factories.answer_cases(session, study.id, people["reader"], cases=6, skill=0.5)
    session.commit()
    pool = get_engine().pool
    held: list[int] = []

    def layout(html: str) -> bytes:  # stands in for WeasyPrint's child process, which takes seconds
        held.append(pool.checkedout() - idle)
        return b"%PDF-1.7 " + html.encode()

    monkeypatch.setattr(results_routes, "html_to_pdf", layout)
    client = signed_in("researcher")
    idle = pool.checkedout()
    r = client.get(f"/studies/{study.id}/report.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-") and study.title.encode() in r.content
    # The report's read ended before its figures were drawn and its pages laid out (up to 120 s).
    assert held == [0], "a connection was held while the PDF was laid out"
