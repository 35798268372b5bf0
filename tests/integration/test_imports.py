"""Bad input to the importers: a clear 4xx message each time, and nothing half-imported."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from app.persistence.models import Image, ImageSet
from tests import factories


def png(size=(40, 30), value=120) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.full(size[::-1], value, np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def bomb() -> bytes:
    buf = io.BytesIO()
    PILImage.new("1", (20000, 20000)).save(buf, format="PNG")  # a few KB on disk, 400 Mpx decoded
    return buf.getvalue()


def dicom_without_pixels() -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.PatientID = "p1"
    ds.Modality = "DX"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _counts(session, store) -> tuple[int, int, int]:
    files = sum(1 for _ in store.root.rglob("*.png")) if store.root.exists() else 0
    return (
        session.scalar(select(func.count()).select_from(ImageSet)),
        session.scalar(select(func.count()).select_from(Image)),
        files,
    )


def _upload(client, files, *, name="Upload", labels=None, extra=None):
    token = factories.csrf_of(client.get("/image-sets").text)
    data = {"csrf_token": token, "name": name, "kind": "real", "resolution": "64", **(extra or {})}
    payload = [("files", f) for f in files]
    if labels is not None:
        payload.append(("labels_csv", ("labels.csv", labels, "text/csv")))
    return client.post("/image-sets", data=data, files=payload)


@pytest.mark.parametrize(
    "bad,message",
    [
        (("broken.png", png()[:60], "image/png"), "truncated or corrupt"),
        (("bomb.png", bomb(), "image/png"), "too large"),
        (("notes.png", b"hello, this is text", "image/png"), "not an image"),
        (("empty.dcm", dicom_without_pixels(), "application/dicom"), "no pixel data"),
    ],
)
def test_bad_file_rejects_the_whole_upload(session, store, signed_in, bad, message):
    admin = signed_in("admin")
    before = _counts(session, store)
    r = _upload(admin, [("good.png", png(), "image/png"), bad])
    assert 400 <= r.status_code < 500, r.text
    assert message in r.text.lower() and bad[0] in r.text and "Nothing was imported" in r.text
    assert _counts(session, store) == before


def test_labels_with_unknown_findings_are_refused(session, store, signed_in):
    admin = signed_in("admin")
    before = _counts(session, store)
    labels = b"file,findings\na.png,Effusion|Dragon\nb.png,No Finding\n"
    r = _upload(admin, [("a.png", png(), "image/png"), ("b.png", png(value=30), "image/png")], labels=labels)
    assert r.status_code == 422 and "Dragon" in r.text and "unknown findings" in r.text
    assert _counts(session, store) == before


def test_zip_with_labels_imports(session, store, signed_in):
    admin = signed_in("admin")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("imgs/a.png", png(value=10))
        zf.writestr("imgs/b.png", png((64, 80), value=200))
        zf.writestr("labels.csv", "file,findings\na.png,Effusion|Mass\nb.png,No Finding\n")
    r = _upload(admin, [("set.zip", buf.getvalue(), "application/zip")], name="Zipped")
    assert r.status_code == 200, r.text
    assert "Zipped" in r.text and "Effusion" in r.text
    rows = session.scalars(select(Image).order_by(Image.source_name)).all()
    assert [r.labels for r in rows] == [["Effusion", "Mass"], []]


def test_oversize_upload_is_refused(session, store, db_url, monkeypatch):
    from fastapi.testclient import TestClient

    from app.core.config import get_settings

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "20000")
    get_settings.cache_clear()
    try:
        from app.web.main import create_app

        factories.user(session, "admin", "big@test.org")
        session.commit()
        with TestClient(create_app()) as client:
            factories.login(client, "big@test.org")
            before = _counts(session, store)
            r = _upload(client, [("big.png", b"\x89PNG" + b"\0" * 50_000, "image/png")])
            assert r.status_code == 413 and "larger than the limit" in r.text
            assert _counts(session, store) == before
    finally:
        monkeypatch.delenv("MAX_UPLOAD_BYTES")
        get_settings.cache_clear()


def test_large_bodies_are_refused_outside_the_upload_before_any_parsing(make_client):
    r = make_client().post(
        "/login",
        content=b"email=" + b"a" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and "larger than the limit of 1 MB" in r.text


def test_malformed_form_post_gets_a_clear_message(session, store, signed_in):
    admin = signed_in("admin")
    token = factories.csrf_of(admin.get("/image-sets").text)
    r = admin.post("/image-sets", data={"csrf_token": token, "kind": "purple"})
    assert r.status_code == 422
    assert "name" in r.text and "kind" in r.text and "not filled in correctly" in r.text
    r = admin.post("/studies", data={"csrf_token": token, "title": "x", "n_cases": "many"})
    assert r.status_code == 422 and "n_cases" in r.text
    for field, value in [
        ("retest_percent", "99"),
        ("retest_gap", "0"),
        ("retest_percent", "x"),
        ("plan_auc", "a" * 50),
    ]:
        r = admin.post("/studies", data={"csrf_token": token, "title": "x", "n_cases": "10", field: value})
        assert r.status_code == 422 and field in r.text


def test_folder_and_chestxray14_importers(session, store, tmp_path):
    from app.domain import sources
    from app.domain.importers import ImportSpec, import_images
    from app.domain.labels import CXR14_FINDINGS

    root = tmp_path / "cxr14"
    (root / "images_001" / "images").mkdir(parents=True)
    names = [f"0000000{i}_000.png" for i in range(4)]
    for i, n in enumerate(names):
        (root / "images_001" / "images" / n).write_bytes(png((100, 100), value=40 * i))
    (root / "Data_Entry_2017.csv").write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
        + "".join(
            f"{n},{lab},0,{i},50,M,PA,100,100,0.1,0.1\n"
            for i, (n, lab) in enumerate(
                zip(names, ["No Finding", "Effusion|Mass", "Hernia", "Nodule"], strict=True)
            )
        )
    )
    (root / "train_val_list.txt").write_text("\n".join(names[:3]))
    (root / "test_list.txt").write_text(names[3])
    items = list(sources.chestxray14_images(root, schema=CXR14_FINDINGS, limit=2, split="train"))
    assert [i.findings for i in items] == [(), ("Effusion", "Mass")]
    test_items = list(sources.chestxray14_images(root, schema=CXR14_FINDINGS, limit=None, split="test"))
    assert [i.split for i in test_items] == ["test"] and test_items[0].patient_id == "3"
    spec = ImportSpec(
        name="cxr14", kind="real", label_schema=CXR14_FINDINGS, resolution=64, source="chestxray14"
    )
    s = import_images(session, store, spec, items, actor_id=None)
    assert s.image_count == 2

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.png").write_bytes(png())
    (folder / "y.jpg").write_bytes(png())  # a PNG with a .jpg name still decodes (by content)
    (folder / "labels.csv").write_text("file,findings\nx.png,Nodule\ny.jpg,\n")
    folder_items = sources.folder_images(folder, labels_csv=folder / "labels.csv", schema=CXR14_FINDINGS)
    assert [i.findings for i in folder_items] == [("Nodule",), ()]


def test_labels_cannot_be_ambiguous_across_folders(session, store, signed_in):
    admin = signed_in("admin")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("real/a.png", png(value=10))
        zf.writestr("other/a.png", png(value=200))
        zf.writestr("labels.csv", "file,findings\na.png,Effusion\n")
    before = _counts(session, store)
    r = _upload(admin, [("set.zip", buf.getvalue(), "application/zip")], name="Ambiguous")
    assert r.status_code == 422 and "several folders" in r.text
    assert _counts(session, store) == before
