"""The demo's LCO archive ships as data: it belongs to the bundled models, a stale or damaged one is refused
with a clear message, and a rebuild writes a whole archive or leaves the old one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.cli import demo_archive as da
from app.cli.demo import DEMO_CLASSIFIER, DEMO_MODEL

MODELS = {"model": DEMO_MODEL, "classifier": DEMO_CLASSIFIER}


def test_the_shipped_archive_belongs_to_the_bundled_models_and_describes_each_film():
    index = da.read_index()
    assert index is not None, f"{da.ARCHIVE} ships with the app"
    n = len(index["images"])
    assert n == 120
    da.check(index, da.ARCHIVE, n=n, **MODELS)  # weights' sha256 and every file's
    for role, name in (("generator", DEMO_MODEL), ("classifier", DEMO_CLASSIFIER)):
        manifest = json.loads((da.BUNDLED / name / "manifest.json").read_text())
        assert index[role] == {"name": name, "sha256": manifest["sha256"]}
    assert index["built"]["command"] == da.REBUILD_COMMAND and index["lco"]["steps"] == 100
    assert sorted(p.name for p in da.ARCHIVE.iterdir()) == sorted(
        [da.INDEX, *(e["file"] for e in index["images"])]
    )
    for i, entry in enumerate(index["images"]):
        p = entry["provenance"]
        assert entry["file"] == f"lco-0-{i:06d}.png" and p["index"] == i
        assert p["model_sha256"] == index["generator"]["sha256"] and p["method"] == "lco"
        assert set(entry["findings"]) <= set(index["label_schema"])
        if p["success"]:  # a reached target is the film's labels; otherwise what the classifier sees
            assert sorted(entry["findings"]) == sorted(p["target"])
    assert index["reached"]["optimiser"] == sum(e["provenance"]["optimiser_success"] for e in index["images"])


def _copy(tmp_path: Path, n: int = 2) -> tuple[dict, Path]:
    index = da.read_index()
    folder = tmp_path / "demo-archive"
    folder.mkdir()
    for entry in index["images"][:n]:
        shutil.copy(da.ARCHIVE / entry["file"], folder / entry["file"])
    return index, folder


def test_an_archive_of_other_weights_is_refused_as_stale(tmp_path):
    index, folder = _copy(tmp_path)
    da.check(index, folder, n=2, **MODELS)
    for role in ("generator", "classifier"):
        stale = json.loads(json.dumps(index))
        stale[role]["sha256"] = "0" * 64
        with pytest.raises(da.StaleArchive) as refused:
            da.check(stale, folder, n=2, **MODELS)
        message = refused.value.format_message()
        assert "stale" in message and da.REBUILD_COMMAND in message and role in message


def test_a_damaged_film_or_too_few_films_are_refused(tmp_path):
    index, folder = _copy(tmp_path)
    with pytest.raises(da.StaleArchive, match="holds 120 films and 121 were asked for"):
        da.check(index, da.ARCHIVE, n=121, **MODELS)
    (folder / index["images"][1]["file"]).write_bytes(b"not the film")
    with pytest.raises(da.StaleArchive, match="does not match the sha256"):
        da.check(index, folder, n=2, **MODELS)


def test_a_rebuild_writes_a_whole_archive_or_keeps_the_old_one(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from app.domain import rendering

    dest = tmp_path / "demo-archive"
    tiny = {"steps": 2, "lr": 0.1, "restarts": 0, "batch": 4}
    da.build(dest, n=3, settings=tiny, **MODELS)
    first = da.read_index(dest)
    da.check(first, dest, n=3, **MODELS)
    assert first["reached"]["of"] == 3 and first["lco"]["steps"] == 2

    calls = []
    real = rendering.render_array

    def fails_on_the_second_film(pixels, *, size):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real(pixels, size=size)

    monkeypatch.setattr(rendering, "render_array", fails_on_the_second_film)
    with pytest.raises(RuntimeError, match="interrupted"):
        da.build(dest, n=3, settings=tiny, **MODELS)
    assert da.read_index(dest) == first  # the old archive, whole
    assert [p.name for p in tmp_path.iterdir()] == ["demo-archive"]  # no partial folder left
