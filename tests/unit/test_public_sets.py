"""CheXpert and MIMIC-CXR-JPG layouts: parsing, uncertainty policies, views, splits, mapping, errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from app.domain import schemas
from app.domain.chexpert import chexpert_images
from app.domain.errors import Invalid
from app.domain.identities import pseudonym
from app.domain.labels import CXR14_FINDINGS, NO_FINDING
from app.domain.mimic import NO_LABELS, NOT_DOWNLOADED, OTHER_VIEW, mimic_images
from tests.public_set_trees import CHEXPERT_IDS, MIMIC_IDS, chexpert_tree, mimic_tree


def _no_raw_ids(items, ids) -> None:
    for item in items:
        text = item.name + json.dumps(item.provenance)
        assert not [i for i in ids if i in text], text


# The mapping table


def test_schemas_name_the_findings_and_never_no_finding():
    assert schemas.SCHEMAS["chestxray14"] == CXR14_FINDINGS
    assert (
        len(schemas.SCHEMAS["chexpert"]) == 13
        and schemas.SCHEMAS["chexpert"][0] == "Enlarged Cardiomediastinum"
    )
    assert all(NO_FINDING not in s for s in schemas.SCHEMAS.values())


def test_every_name_is_mapped_once_or_has_a_reason():
    table = schemas.CHEXPERT_TO_CXR14
    assert sorted([*table, *schemas.CHEXPERT_UNMAPPED]) == sorted(schemas.SCHEMAS["chexpert"])
    assert sorted([*table.values(), *schemas.CXR14_UNMAPPED]) == sorted(CXR14_FINDINGS)
    assert len(set(table.values())) == len(table)  # one-to-one, so the reverse is a table too
    assert table["Pleural Effusion"] == "Effusion" and "Lung Lesion" in schemas.CHEXPERT_UNMAPPED


def test_translate_both_ways_in_target_order():
    found, unmapped = schemas.translate(
        ("Pleural Effusion", "Lung Lesion", "Cardiomegaly"), "chexpert", "chestxray14"
    )
    assert found == ("Cardiomegaly", "Effusion") and unmapped == ("Lung Lesion",)
    assert schemas.translate(["Mass", "Effusion", "Edema"], "chestxray14", "chexpert") == (
        ("Edema", "Pleural Effusion"),
        ("Mass",),
    )
    assert schemas.translate(("Fracture", "Edema"), "chexpert", "chexpert") == (("Edema", "Fracture"), ())
    with pytest.raises(Invalid, match="Effusion"):
        schemas.translate(("Effusion",), "chexpert", "chestxray14")  # a ChestX-ray14 name, not CheXpert's
    with pytest.raises(Invalid, match="padchest"):
        schemas.translate((), "padchest", "chexpert")


def test_mapped_schema_claims_only_what_the_table_reaches():
    to_cxr14 = schemas.mapped_schema("chexpert", "chestxray14")
    assert to_cxr14 == tuple(f for f in CXR14_FINDINGS if f in schemas.CHEXPERT_TO_CXR14.values())
    assert to_cxr14[:3] == ("Atelectasis", "Cardiomegaly", "Effusion") and "Mass" not in to_cxr14
    assert schemas.mapped_schema("chestxray14", "chexpert")[-3:] == (
        "Atelectasis",
        "Pneumothorax",
        "Pleural Effusion",
    )
    assert schemas.mapped_schema("chexpert", "chexpert") == schemas.SCHEMAS["chexpert"]


# CheXpert


@pytest.mark.parametrize(
    "policy,findings,masked",
    [
        ("ignore", ("Cardiomegaly", "Lung Lesion", "Support Devices"), ["Pleural Effusion"]),
        ("positive", ("Cardiomegaly", "Lung Lesion", "Pleural Effusion", "Support Devices"), []),
        ("negative", ("Cardiomegaly", "Lung Lesion", "Support Devices"), []),
    ],
)
def test_chexpert_uncertainty_policies(tmp_path, policy, findings, masked):
    first = next(chexpert_images(chexpert_tree(tmp_path), uncertain=policy))
    assert first.findings == findings and first.provenance["uncertain"] == masked
    assert first.provenance["source_uncertain"] == ["Pleural Effusion"]
    assert first.provenance["source_labels"] == ["Cardiomegaly", "Lung Lesion", "Support Devices"]
    assert first.provenance["uncertain_policy"] == policy


def test_chexpert_ids_names_views_and_splits(tmp_path):
    root = chexpert_tree(tmp_path)
    items = list(chexpert_images(root, uncertain="ignore", views="all"))
    assert len(items) == 5 and [i.provenance["view"] for i in items].count("lateral") == 1
    first = items[0]
    assert (first.patient_id, first.study_id) == ("patient00001", "patient00001/study1")
    pid, sid = pseudonym("patient", "patient00001"), pseudonym("study", "patient00001/study1")
    assert first.name == f"{pid}/{sid}/view1_frontal.jpg"
    assert (
        first.provenance.items()
        >= {"projection": "AP", "sex": "Female", "age": "68", "view": "frontal"}.items()
    )
    assert first.read() == (root / "train/patient00001/study1/view1_frontal.jpg").read_bytes()
    assert [i.split for i in items] == ["train"] * 4 + ["test"] and items[-1].provenance[
        "source_split"
    ] == "valid"
    _no_raw_ids(items, CHEXPERT_IDS)
    assert len(list(chexpert_images(root, uncertain="ignore"))) == 4  # frontal by default
    assert [
        i.name.endswith("lateral.jpg") for i in chexpert_images(root, uncertain="ignore", views="lateral")
    ] == [True]
    valid = list(chexpert_images(root, uncertain="ignore", split="valid"))
    assert [i.patient_id for i in valid] == ["patient64541"]
    assert len(list(chexpert_images(root, uncertain="ignore", split="train", limit=2))) == 2


def test_chexpert_as_chestxray14_keeps_the_source_labels(tmp_path):
    root = chexpert_tree(tmp_path)
    first, *_, valid = chexpert_images(root, uncertain="ignore", labels_as="chestxray14")
    assert first.findings == ("Cardiomegaly",) and first.provenance["uncertain"] == ["Effusion"]
    assert first.provenance["unmapped"] == ["Lung Lesion", "Support Devices"]
    assert first.provenance["source_labels"] == ["Cardiomegaly", "Lung Lesion", "Support Devices"]
    assert valid.findings == ("Effusion",) and valid.provenance["unmapped"] == ["Lung Opacity"]
    assert set(first.findings) <= set(schemas.mapped_schema("chexpert", "chestxray14"))


def test_chexpert_folder_under_another_name_resolves_paths_inside_it(tmp_path):
    root = chexpert_tree(tmp_path, folder="chexpert")  # the CSVs still say CheXpert-v1.0-small/…
    assert len(list(chexpert_images(root, uncertain="negative"))) == 4


def test_chexpert_bad_input_names_file_and_problem(tmp_path):
    root = chexpert_tree(tmp_path)
    (root / "valid.csv").rename(root / "held.csv")
    with pytest.raises(Invalid, match="valid.csv is missing"):
        chexpert_images(root, uncertain="ignore")
    assert chexpert_images(root, uncertain="ignore", split="train") is not None  # train alone is fine
    with pytest.raises(Invalid, match="uncertain must be one of ignore, positive, negative, not 'maybe'"):
        chexpert_images(root, uncertain="maybe", split="train")
    with pytest.raises(Invalid, match="split must be"):
        chexpert_images(root, uncertain="ignore", split="validate")
    text = (root / "train.csv").read_text()
    (root / "train.csv").write_text(text.replace("Frontal/Lateral", "View"))
    with pytest.raises(Invalid, match="train.csv has no column 'Frontal/Lateral'"):
        chexpert_images(root, uncertain="ignore", split="train")
    (root / "train.csv").write_text(text.replace("-1.0", "2.0", 1))
    with pytest.raises(Invalid, match=r"train.csv line 2: 'Pleural Effusion' is '2.0'"):
        list(chexpert_images(root, uncertain="ignore", split="train"))
    (root / "train.csv").write_text(text)
    (root / "train/patient00002/study1/view1_frontal.jpg").unlink()
    with pytest.raises(
        Invalid, match=r"line 4: the image '.*patient00002/study1/view1_frontal.jpg' is missing"
    ):
        list(chexpert_images(root, uncertain="ignore", split="train"))
    (root / "train.csv").write_text(text.replace("train/patient00001", "../patient00001", 1))
    with pytest.raises(Invalid, match="not of the form"):
        list(chexpert_images(root, uncertain="ignore", split="train"))


# MIMIC-CXR-JPG


def test_mimic_labels_views_splits_and_skips(tmp_path):
    root = mimic_tree(tmp_path)
    skipped: Counter[str] = Counter()
    items = list(mimic_images(root, uncertain="ignore", views="all", skipped=skipped))
    assert skipped == {OTHER_VIEW: 1, NO_LABELS: 1, NOT_DOWNLOADED: 1}
    assert [(i.patient_id, i.study_id, i.provenance["view"]) for i in items] == [
        ("10000032", "50414267", "frontal"),
        ("10000032", "50414267", "lateral"),
        ("10000032", "53189527", "frontal"),
        ("10000764", "57375967", "frontal"),
    ]
    assert [i.findings for i in items] == [("Cardiomegaly",), ("Cardiomegaly",), (), ("Consolidation",)]
    assert items[0].provenance["uncertain"] == ["Pneumonia"] and items[0].provenance["projection"] == "PA"
    assert [i.split for i in items] == ["train", "train", "train", "test"]
    assert items[2].provenance["source_split"] == "validate"
    dicom = "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"
    assert items[0].name == "/".join(
        [
            pseudonym("patient", "10000032"),
            pseudonym("study", "50414267"),
            pseudonym("instance", dicom) + ".jpg",
        ]
    )
    assert items[0].read() == (root / f"files/p10/p10000032/s50414267/{dicom}.jpg").read_bytes()
    _no_raw_ids(items, MIMIC_IDS)
    assert len(list(mimic_images(root, uncertain="ignore"))) == 3  # frontal only
    assert [i.patient_id for i in mimic_images(root, uncertain="ignore", split="test")] == ["10000764"]
    assert [i.study_id for i in mimic_images(root, uncertain="ignore", split="validate")] == ["53189527"]


def test_mimic_labeller_policy_and_mapping(tmp_path):
    root = mimic_tree(tmp_path)
    chex = list(mimic_images(root, uncertain="positive", split="test"))[0]
    negbio = list(mimic_images(root, labeller="negbio", uncertain="negative", split="test"))[0]
    assert chex.findings == ("Consolidation", "Fracture") and negbio.findings == ("Consolidation", "Fracture")
    assert chex.provenance["source_uncertain"] == ["Fracture"] and negbio.provenance["source_uncertain"] == []
    as14 = list(mimic_images(root, uncertain="positive", split="test", labels_as="chestxray14"))[0]
    assert as14.findings == ("Consolidation",) and as14.provenance["unmapped"] == ["Fracture"]


def test_mimic_bad_input_names_file_and_problem(tmp_path):
    root = mimic_tree(tmp_path)
    with pytest.raises(Invalid, match="labeller must be"):
        mimic_images(root, labeller="radgraph", uncertain="ignore")
    split_csv = root / "mimic-cxr-2.0.0-split.csv"
    text = split_csv.read_text()
    split_csv.unlink()
    with pytest.raises(Invalid, match=r"mimic-cxr-2.0.0-split.csv \(or .csv.gz\) is missing"):
        mimic_images(root, uncertain="ignore")
    split_csv.write_text(text.replace("validate", "dev", 1))
    with pytest.raises(Invalid, match=r"split.csv line 4: split is 'dev'"):
        list(mimic_images(root, uncertain="ignore"))
    split_csv.write_text(text)
    labels = root / "mimic-cxr-2.0.0-negbio.csv"
    labels.write_text(labels.read_text().replace("1.0", "yes", 1))
    with pytest.raises(Invalid, match=r"negbio.csv line 2: 'Cardiomegaly' is 'yes'"):
        list(mimic_images(root, labeller="negbio", uncertain="ignore"))
    next((root / "files/p10/p10000764").rglob("*.jpg")).unlink()
    with pytest.raises(Invalid, match=r"metadata.csv.gz line 6: .*\.jpg is missing, though its folder p10"):
        list(mimic_images(root, uncertain="ignore"))
