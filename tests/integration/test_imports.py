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
    stored = session.scalars(select(Image).where(Image.image_set_id == s.id)).all()
    # The file name is the patient's id and a follow-up number: neither is stored in clear.
    assert all(i.patient_id.startswith("pid_") and "0000000" not in i.source_name for i in stored)
    assert stored[0].source_name.startswith(stored[0].patient_id + "/uid_")

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


def noise_png(seed: int) -> bytes:
    """A film no other test stores: its blob is new to the shared store."""
    buf = io.BytesIO()
    pixels = np.random.default_rng([13, seed]).integers(0, 256, (48, 48), dtype=np.uint8)
    PILImage.fromarray(pixels, "L").save(buf, format="PNG")
    return buf.getvalue()


def _blob_of(data: bytes) -> str:
    from app.domain.rendering import render

    return render(data, size=64).sha256


def _earlier_set(session, store, data: bytes) -> None:
    """A committed import whose blob a later failing import shares."""
    from app.domain.importers import ImportSpec, SourceImage, import_images

    spec = ImportSpec(name="earlier", kind="real", label_schema=(), resolution=64, source="test")
    import_images(session, store, spec, [SourceImage(name="old.png", read=lambda: data)], actor_id=None)
    session.commit()


def _spec(name: str):
    from app.domain.importers import ImportSpec

    return ImportSpec(name=name, kind="real", label_schema=(), resolution=64, source="test")


def test_a_value_the_database_refuses_leaves_no_new_blob_and_keeps_an_earlier_imports(session, store):
    from sqlalchemy.exc import DBAPIError

    from app.domain.importers import SourceImage, import_images

    shared, fresh = noise_png(1), [noise_png(2), noise_png(3)]
    _earlier_set(session, store, shared)
    before = _counts(session, store)
    items = [SourceImage(name="shared.png", read=lambda: shared)] + [
        SourceImage(name=f"new-{i}.png", read=lambda d=d: d) for i, d in enumerate(fresh)
    ]
    items[-1].split = "s" * 21  # longer than the column: refused at the flush, after every blob
    with pytest.raises(DBAPIError):
        import_images(session, store, _spec("refused"), items, actor_id=None)
    assert not any(store.exists(_blob_of(d)) for d in fresh)  # gone already, before any rollback
    session.rollback()
    assert _counts(session, store) == before and store.exists(_blob_of(shared))


def test_a_failure_at_the_callers_commit_removes_the_new_blobs_too(session, store):
    from sqlalchemy.exc import DBAPIError

    from app.domain.importers import SourceImage, import_images

    shared, fresh = noise_png(4), noise_png(5)
    _earlier_set(session, store, shared)
    before = _counts(session, store)
    items = [SourceImage(name="a.png", read=lambda: shared), SourceImage(name="b.png", read=lambda: fresh)]
    image_set = import_images(session, store, _spec("late failure"), items, actor_id=None)
    assert store.exists(_blob_of(fresh))
    image_set.source = "s" * 41  # the caller's own change, too long for the column: its commit fails
    with pytest.raises(DBAPIError):
        session.commit()
    session.rollback()
    assert _counts(session, store) == before
    assert store.exists(_blob_of(shared)) and not store.exists(_blob_of(fresh))


def test_a_committed_import_keeps_its_blobs_through_later_rollbacks(session, store):
    from app.domain.importers import SourceImage, import_images

    data = noise_png(6)
    import_images(
        session, store, _spec("kept"), [SourceImage(name="a.png", read=lambda: data)], actor_id=None
    )
    session.commit()
    assert session.scalar(select(func.count()).select_from(Image)) == 1  # a later transaction begins …
    session.rollback()  # … and ends without a commit
    session.close()
    assert store.exists(_blob_of(data))


def test_an_upload_the_database_refuses_leaves_no_files_and_no_rows(session, store, people):
    """The route path: the upload's labels carry a split longer than its column (a 500 today, or a 422 if
    the form learns to refuse it); either way nothing of it stays behind."""
    from fastapi.testclient import TestClient

    from app.web.main import create_app

    labels = b"file,findings,split\nn7.png,,train\nn8.png,," + b"s" * 30 + b"\n"
    files = [("n7.png", noise_png(7), "image/png"), ("n8.png", noise_png(8), "image/png")]
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        factories.login(client, people["admin"].email)
        before = _counts(session, store)
        r = _upload(client, files, name="Refused", labels=labels)
    assert r.status_code >= 400
    assert _counts(session, store) == before


@pytest.mark.parametrize(
    "bad", ["../x.png", "../../x.png", "/abs.png", "a/../../x.png", "..\\x.png", "imgs\\..\\..\\x.png"]
)
def test_a_zip_entry_that_climbs_out_refuses_the_whole_upload(session, store, signed_in, bad):
    admin = signed_in("admin")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("imgs/a.png", noise_png(9))
        zf.writestr(bad, noise_png(10))
    before = _counts(session, store)
    r = _upload(admin, [("set.zip", buf.getvalue(), "application/zip")], name="Climbing")
    assert r.status_code == 422 and bad in r.text and "Nothing was imported" in r.text
    assert _counts(session, store) == before


def test_a_loose_file_named_with_a_path_out_is_refused(session, store, signed_in):
    admin = signed_in("admin")
    before = _counts(session, store)
    r = _upload(admin, [("a.png", noise_png(11), "image/png"), ("../../x.png", noise_png(12), "image/png")])
    assert r.status_code == 422 and "../../x.png" in r.text and "Nothing was imported" in r.text
    assert _counts(session, store) == before


def test_nested_and_backslashed_folders_in_a_zip_are_fine(session, store, signed_in):
    admin = signed_in("admin")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images_001/images/00000001_000.png", noise_png(13))
        zf.writestr("scans\\b.png", noise_png(14))  # made on Windows
        zf.writestr("labels.csv", "file,findings\n00000001_000.png,Effusion\nb.png,\n")
    r = _upload(admin, [("set.zip", buf.getvalue(), "application/zip")], name="Nested")
    assert r.status_code == 200, r.text
    rows = session.scalars(select(Image).order_by(Image.source_name)).all()
    assert [(i.source_name, i.labels) for i in rows] == [
        ("images_001/images/00000001_000.png", ["Effusion"]),
        ("scans/b.png", []),
    ]


def test_files_with_the_same_content_are_imported_once_and_the_page_says_so(session, store, signed_in):
    admin = signed_in("admin")
    same, other = noise_png(15), noise_png(16)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("a.png", "b.png", "c.png"):
            zf.writestr(name, same)
        zf.writestr("d.png", other)
    r = _upload(admin, [("set.zip", buf.getvalue(), "application/zip")], name="Twice")
    assert r.status_code == 200, r.text
    assert "2 files had the same content as another file of this import" in r.text
    assert "b.png (same as a.png)" in r.text
    image_set = session.scalar(select(ImageSet).where(ImageSet.name == "Twice"))
    rows = session.scalars(select(Image).where(Image.image_set_id == image_set.id)).all()
    assert image_set.image_count == 2 and sorted(i.source_name for i in rows) == ["a.png", "d.png"]


def test_a_failed_import_with_a_duplicate_still_removes_the_blob_it_wrote(session, store):
    """The duplicate must not touch the blob the same import just wrote (that reads as another's use)."""
    from app.domain.importers import SourceImage, import_images

    data = noise_png(17)
    items = [SourceImage(name=n, read=lambda: data) for n in ("a.png", "b.png")]
    items.append(SourceImage(name="bad.png", read=lambda: b"not an image"))
    with pytest.raises(Exception, match="Nothing was imported"):
        import_images(session, store, _spec("dup then bad"), items, actor_id=None)
    assert not store.exists(_blob_of(data))
