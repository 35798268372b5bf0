"""DICOMweb import from a real PACS (Orthanc): filters, the one rendering path, resuming, the job, and PHI.

The films are made here with pydicom (tests/dicom_films.py) and stored in an Orthanc started for this
module (tests/orthanc.py); the import reads them back over QIDO-RS and WADO-RS as from a hospital's PACS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from app.domain import dicomweb, identities
from app.domain.dicomweb_query import ImportDicomwebConfig
from app.domain.errors import Invalid
from app.domain.rendering import png_chunks, render
from app.persistence.models import Image, ImageSet
from tests import factories
from tests.dicom_films import DATE_PHI, TEXT_PHI, chest_film, phi_date, phi_marker
from tests.factories import start_run, wait_for
from tests.orthanc import PASSWORD, USER, running_orthanc


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """One Orthanc for the module; each test empties it first."""
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def pacs(orthanc, monkeypatch, db_url):
    """The emptied PACS, named by settings with its credentials (for this process and its workers)."""
    from app.core.config import get_settings

    orthanc.clear()
    monkeypatch.setenv("DICOMWEB_URL", orthanc.dicomweb)
    monkeypatch.setenv("DICOMWEB_USERNAME", USER)
    monkeypatch.setenv("DICOMWEB_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    yield orthanc
    get_settings.cache_clear()


def _cli(*args: str):
    from app.cli.main import cli

    return CliRunner().invoke(cli, ["images", "import", "dicomweb", *args], catch_exceptions=False)


# Seven films: three frontal chest films of two patients are wanted; the rest each fail one filter.
FILMS = [
    dict(patient_id="MRN-0001", modality="DX", view="PA", phi=True),
    dict(patient_id="MRN-0001", modality="CR", view="AP", phi=True),
    dict(patient_id="MRN-0002", modality="DX", view="LL", phi=True),  # lateral: skipped with --views frontal
    dict(patient_id="MRN-0003", modality="DX", view="PA", photometric="MONOCHROME1", phi=True),
    dict(patient_id="MRN-0004", modality="DX", body_part="KNEE", phi=True),  # another body part
    dict(patient_id="MRN-0005", modality="MG", phi=True),  # another modality
    dict(patient_id="MRN-0006", modality="DX", view="PA", burned_in=True, phi=True),  # pixels may show PHI
]


def _store_films(pacs) -> list[tuple[bytes, object]]:
    films = [chest_film(i, **spec) for i, spec in enumerate(FILMS)]
    pacs.store(*(data for data, _ in films))
    return films


def test_import_keeps_the_wanted_films_renders_them_as_files_are_and_hashes_their_ids(pacs, session):
    films = _store_films(pacs)
    result = _cli("--name", "pacs chest", "--views", "frontal", "--size", "64")
    assert result.exit_code == 0, result.output
    assert "imported 3 films" in result.output
    assert "2 films skipped" in result.output and "burned-in annotation" in result.output

    image_set = session.scalars(select(ImageSet).where(ImageSet.name == "pacs chest")).one()
    assert (image_set.kind, image_set.source, image_set.resolution) == ("real", "dicomweb", 64)
    rows = session.scalars(select(Image).where(Image.image_set_id == image_set.id))
    images = {i.source_name: i for i in rows}
    for index in (0, 1, 3):
        data, ds = films[index]
        image = images[identities.pseudonym("instance", ds.SOPInstanceUID)]
        # The same bytes as the folder importer makes of the file: modality LUT, window, MONOCHROME1.
        assert image.sha256 == render(data, size=64).sha256
        assert image.patient_id == identities.pseudonym("patient", ds.PatientID)
        assert image.study_id == identities.pseudonym("study", ds.StudyInstanceUID)
        assert image.provenance["view"] in ("PA", "AP")
    assert len({i.patient_id for i in images.values()}) == 2  # films 0 and 1 are one patient's


def test_the_study_filters_and_wildcards_reach_the_pacs(pacs):
    films = _store_films(pacs)
    client = dicomweb.connect(pacs.dicomweb)

    def listed(**query) -> set[int]:
        refs = dicomweb.list_instances(client, ImportDicomwebConfig(set_name="x", **query))
        sops = {r.sop for r in refs}
        return {i for i, (_, ds) in enumerate(films) if ds.SOPInstanceUID in sops}

    assert listed() == {0, 1, 2, 3, 6}  # CR and DX chest films, whatever their view
    assert listed(modalities="CR") == {1}
    assert listed(body_part="") == {0, 1, 2, 3, 4, 6}
    # Study dates are 19<10+i>-02-<10+i> (tests/dicom_films.phi_date): 1911 and 1912 are films 1 and 2.
    assert listed(date_from="1911-01-01", date_to="1912-12-31") == {1, 2}
    assert listed(study_description=phi_marker(3, "StudyDescription")[:5] + "*") == {3}
    assert listed(study_description="PHI0?033ZQX") == {0, 1, 2, 3, 6}
    accessions = f"{films[0][1].AccessionNumber}\n{films[6][1].AccessionNumber}, NOT-THERE"
    assert listed(accessions=accessions) == {0, 6}
    assert len(dicomweb.list_instances(client, ImportDicomwebConfig(set_name="x", limit=2))) == 2


def test_a_rerun_after_an_interruption_fetches_only_what_is_missing_and_imports_all_at_once(
    pacs, session, store, tmp_path
):
    films = _store_films(pacs)
    query = ImportDicomwebConfig(set_name="resumed", size=64)
    client = dicomweb.connect(pacs.dicomweb)
    fetched: list[str] = []
    retrieve = client.retrieve_instance

    def counting(study, series, sop):
        fetched.append(sop)
        return retrieve(study, series, sop)

    client.retrieve_instance = counting

    class Interrupted(Exception):
        pass

    checks: list[int] = []

    def stop_after_two() -> None:  # asked after each film staged
        checks.append(1)
        if len(checks) >= 2:
            raise Interrupted()

    with pytest.raises(Interrupted):
        dicomweb.import_from_pacs(
            session, store, client, query, tmp_path, actor_id=None, check_abort=stop_after_two
        )
    session.rollback()
    assert session.scalar(select(ImageSet.id)) is None  # nothing half-imported
    staged = len(dicomweb.Staging(tmp_path).entries())  # films in flight at the abort are fetched again
    chest = [0, 1, 2, 3, 6]  # every film but the knee and the mammogram
    assert staged == 2
    fetched.clear()

    image_set, notes = dicomweb.import_from_pacs(session, store, client, query, tmp_path, actor_id=None)
    session.commit()
    assert len(fetched) == len(chest) - staged  # what the manifest held was not fetched again
    assert image_set.image_count == len(chest) - 1  # the burned-in film is skipped
    assert any("burned-in" in n for n in notes)
    names = {i.source_name for i in session.scalars(select(Image).where(Image.image_set_id == image_set.id))}
    assert names == {identities.pseudonym("instance", films[i][1].SOPInstanceUID) for i in chest[:-1]}


def test_the_pacs_refusing_the_credentials_is_a_clear_error(pacs, monkeypatch):
    from app.core.config import get_settings

    monkeypatch.setenv("DICOMWEB_PASSWORD", "wrong")
    get_settings.cache_clear()
    client = dicomweb.connect(pacs.dicomweb)
    with pytest.raises(Invalid, match="HTTP 401.*DICOMWEB_USERNAME"):
        dicomweb.list_instances(client, ImportDicomwebConfig(set_name="x"))


def test_the_admin_form_runs_the_import_as_a_job_and_the_run_forgets_the_accessions(
    pacs, signed_in, workers, session
):
    films = _store_films(pacs)
    accession = films[0][1].AccessionNumber
    admin = signed_in("admin")
    sets_page = admin.get("/image-sets").text
    assert 'href="/runs/new?kind=import_dicomweb"' in sets_page and PASSWORD not in sets_page
    run_id = start_run(
        admin, "import_dicomweb", set_name="from the pacs", accessions=accession, views="all", size="64"
    )
    workers.start(queues="cpu")
    run = wait_for(run_id, lambda r: r.status in ("succeeded", "failed"), workers)
    assert run.status == "succeeded", (run.error, workers.logs())
    assert run.outputs["images"] == 1 and run.outputs["accessions_asked"] == 1
    assert run.config["accessions"] == ""
    assert accession not in json.dumps(run.config)
    page = admin.get(f"/runs/{run_id}")
    assert page.status_code == 200 and "from the pacs" in page.text


def test_the_form_says_when_no_pacs_is_configured(signed_in, monkeypatch, db_url):
    from app.core.config import get_settings

    monkeypatch.delenv("DICOMWEB_URL", raising=False)
    get_settings.cache_clear()
    admin = signed_in("admin")
    assert "No PACS is configured" in admin.get("/image-sets").text
    page = admin.get("/runs/new?kind=import_dicomweb")
    assert 'type="date"' in page.text and '<textarea name="accessions"' in page.text
    token = factories.csrf_of(page.text)
    key = page.text.split('name="request_key" value="', 1)[1].split('"', 1)[0]
    r = admin.post(
        "/runs",
        data={"csrf_token": token, "kind": "import_dicomweb", "request_key": key, "set_name": "x"},
    )
    assert r.status_code == 422 and "DICOMWEB_URL" in r.text


def _markers(films) -> list[str]:
    """Every identifying value the films carry, in the forms they could be written in."""
    found = []
    for index, (_, ds) in enumerate(films):
        found += [phi_marker(index, k) for k in TEXT_PHI if k != "PatientID"]
        for k in DATE_PHI:
            d = phi_date(index, k)
            found += [d, f"{d[:4]}-{d[4:6]}-{d[6:]}"]
        found += [ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
    return found


def test_no_identifier_reaches_the_database_the_store_the_images_or_any_export(
    pacs, session, store, store_dir, owner_engine, people, signed_in
):
    films = _store_films(pacs)
    assert _cli("--name", "pacs", "--size", "64").exit_code == 0
    real = session.scalars(select(ImageSet).where(ImageSet.name == "pacs")).one()
    synthetic = factories.phantom_set(session, store, name="synthetic", kind="synthetic", n=8, size=64)
    study = factories.launched_study(
        session, store, readers=[people["reader"]], creator=people["researcher"], n_cases=6,
        real=real, synthetic=synthetic,
    )
    session.commit()
    factories.answer_cases(session, study.id, people["reader"], cases=6, skill=0.5)
    researcher = signed_in("researcher")
    paths = ("/export.csv", "/codebook.csv", "/analysis.json", "/ratings.imrmc", "/results", "/report")
    exports = {path: researcher.get(f"/studies/{study.id}{path}") for path in paths}
    exports["image set page"] = signed_in("admin").get(f"/image-sets/{real.id}")
    for name, response in exports.items():
        assert response.status_code == 200, (name, response.text[:500])

    with owner_engine.connect() as conn:
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        ).scalars()
        dumps = [conn.execute(text(f'SELECT CAST(t AS text) FROM "{t}" t')).scalars() for t in list(tables)]
        database = "\n".join(row for rows in dumps for row in rows)
    files = {p: p.read_bytes() for p in Path(store_dir).rglob("*") if p.is_file()}
    blobs = session.scalars(select(Image.sha256).where(Image.image_set_id == real.id)).all()
    assert blobs and all(png_chunks(store.get(sha)) == ["IHDR", "IDAT", "IEND"] for sha in blobs)

    leaks = []
    for marker in _markers(films):
        if marker in database:
            leaks.append(f"database: {marker}")
        leaks += [f"{p}: {marker}" for p, data in files.items() if marker.encode() in data]
        leaks += [f"{name}: {marker}" for name, r in exports.items() if marker in r.text]
    assert not leaks, leaks[:20]
