"""`cxrlab images import chexpert|mimic` into the real database: schema, labels, description, and no raw id
of the source anywhere in what is stored."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli.main import cli
from app.domain import schemas
from app.domain.errors import Invalid
from app.domain.identities import pseudonym
from app.persistence.models import Image, ImageSet
from tests.public_set_trees import CHEXPERT_IDS, MIMIC_IDS, chexpert_tree, mimic_tree


def _import(*args: str):
    return CliRunner().invoke(cli, ["images", "import", *args, "--size", "32"])


def _stored(session, name: str) -> tuple[ImageSet, list[Image]]:
    image_set = session.scalar(select(ImageSet).where(ImageSet.name == name))
    assert image_set is not None
    images = session.scalars(select(Image).where(Image.image_set_id == image_set.id).order_by(Image.id)).all()
    return image_set, list(images)


def _assert_no_raw_ids(image_set: ImageSet, images: list[Image], ids: tuple[str, ...]) -> None:
    stored = [image_set.description, image_set.name]
    for i in images:
        stored += [i.source_name, json.dumps(i.provenance), i.patient_id or "", i.study_id or ""]
    leaks = {raw for raw in ids for text in stored if raw in text}
    assert not leaks, leaks


def test_chexpert_import_then_the_same_films_as_chestxray14(session, store, tmp_path):
    root = chexpert_tree(tmp_path)
    out = _import("chexpert", str(root), "--name", "CheX", "--views", "all")
    assert out.exit_code == 0, out.output + repr(out.exception)
    assert "imported 5 images into 'CheX'" in out.output
    image_set, images = _stored(session, "CheX")
    assert image_set.source == "chexpert" and tuple(image_set.label_schema) == schemas.SCHEMAS["chexpert"]
    for words in (
        "split all",
        "views all",
        "uncertain labels (-1.0) left out of the labels",
        "CheXpert's 13",
    ):
        assert words in image_set.description
    assert images[0].labels == ["Cardiomegaly", "Lung Lesion", "Support Devices"]
    assert images[0].provenance["uncertain"] == ["Pleural Effusion"]
    assert images[0].patient_id == pseudonym("patient", "patient00001")
    assert images[0].study_id == pseudonym("study", "patient00001/study1")
    assert [i.split for i in images] == ["train"] * 4 + ["test"]
    assert len({i.patient_id for i in images}) == 3 and len({i.study_id for i in images}) == 4
    _assert_no_raw_ids(image_set, images, CHEXPERT_IDS)

    out = _import(
        "chexpert", str(root), "--name", "CheX14", "--labels-as", "chestxray14", "--uncertain", "positive"
    )
    assert out.exit_code == 0, out.output + repr(out.exception)
    as14, frontal = _stored(session, "CheX14")
    assert tuple(as14.label_schema) == schemas.mapped_schema("chexpert", "chestxray14")
    assert "Pleural Effusion -> Effusion" in as14.description and "counted as present" in as14.description
    assert frontal[0].labels == ["Cardiomegaly", "Effusion"]
    assert frontal[0].provenance["source_labels"] == ["Cardiomegaly", "Lung Lesion", "Support Devices"]
    # The same films give the same pseudonyms: the two sets' patients line up for patient-level splits.
    frontal_of_first = [i for i in images if i.provenance["view"] == "frontal"]
    assert [i.patient_id for i in frontal] == [i.patient_id for i in frontal_of_first]
    assert [i.source_name for i in frontal] == [i.source_name for i in frontal_of_first]
    _assert_no_raw_ids(as14, frontal, CHEXPERT_IDS)


def test_mimic_import_with_negbio_labels(session, store, tmp_path):
    root = mimic_tree(tmp_path)
    out = _import("mimic", str(root), "--name", "MIMIC", "--labeller", "negbio", "--views", "all")
    assert out.exit_code == 0, out.output + repr(out.exception)
    assert "imported 4 images" in out.output
    for note in ("1 film passed over: folder not downloaded", "other view", "study without labels"):
        assert note in out.output
    image_set, images = _stored(session, "MIMIC")
    assert (
        image_set.source == "mimic-cxr-jpg" and tuple(image_set.label_schema) == schemas.SCHEMAS["chexpert"]
    )
    assert "negbio labels (per study)" in image_set.description
    assert [i.labels for i in images] == [
        ["Cardiomegaly"],
        ["Cardiomegaly"],
        [],
        ["Consolidation", "Fracture"],
    ]
    assert [i.split for i in images] == ["train", "train", "train", "test"]
    assert {i.patient_id for i in images} == {pseudonym("patient", s) for s in ("10000032", "10000764")}
    _assert_no_raw_ids(image_set, images, MIMIC_IDS)


def test_a_missing_film_imports_nothing(session, store, tmp_path):
    root = chexpert_tree(tmp_path)
    (root / "valid/patient64541/study1/view1_frontal.jpg").unlink()
    out = _import("chexpert", str(root), "--name", "Broken")
    assert isinstance(out.exception, Invalid) and "is missing" in str(out.exception)
    assert session.scalar(select(func.count()).select_from(ImageSet)) == 0


@pytest.mark.parametrize("option", [["--uncertain", "maybe"], ["--labeller", "radgraph"], ["--split", "dev"]])
def test_unknown_option_values_are_refused_by_the_cli(tmp_path, option):
    out = CliRunner().invoke(cli, ["images", "import", "mimic", str(tmp_path), "--name", "X", *option])
    assert out.exit_code == 2 and "Invalid value" in out.output
