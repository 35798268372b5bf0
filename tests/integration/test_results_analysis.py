"""The results page's analysis on a real study: MRMC from the stored readings, agreement with its n, and the
same figures from the export through `cxrlab analyse mrmc` (one code path)."""

from __future__ import annotations

import csv
import io
import json
import re

from click.testing import CliRunner

from app.cli.analyse import analyse_group
from app.domain import results
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

    res = results.study_results(session, study)
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
    (cli_level,) = cli["analyses"]["RRRC"]["levels"]
    assert cli_level["estimate"] == level.estimate
    assert (cli_level["low"], cli_level["high"], cli_level["p"]) == (level.low, level.high, level.p)
    assert cli["components"] == json.loads(json.dumps(res.mrmc.auc.to_dict()["components"]))
