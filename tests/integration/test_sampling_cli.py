"""A trained snapshot becomes a synthetic image set through `cxrlab sample`, with full provenance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")


@pytest.fixture
def tiny_snapshot(tmp_path, store_dir):
    """A few hundred images of training at 8 px, stored as the model 'tiny' under STORE_DIR/models."""
    from PIL import Image

    from app.ml import phantoms
    from app.ml.gan.config import GanConfig
    from app.ml.gan.schedule import TrainConfig
    from app.ml.gan.train import train

    folder = tmp_path / "phantoms"
    folder.mkdir()
    for p in phantoms.generate(32, size=32, seed=0):
        Image.fromarray(p.image).save(folder / f"{p.index:03d}.png")
    cfg = GanConfig(z_dim=16, resolution=8, channels=(16, 16))
    tcfg = TrainConfig(
        resolution=8,
        fade_images=128,
        stable_images=128,
        final_stable_images=128,
        batch_sizes=(16, 16),
        grid_every=10**9,
        metrics_every=10**9,
        checkpoint_every=10**9,
    )
    result = train(cfg, tcfg, folder, tmp_path / "run")
    target = store_dir / "models" / "tiny"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(result.snapshot, target)
    yield target
    shutil.rmtree(target, ignore_errors=True)


def _cli(*args: str):
    cmd = [sys.executable, "-c", "from app.cli.main import main; main()", *args]
    return subprocess.run(cmd, env=dict(os.environ), capture_output=True, text=True, timeout=300)


def test_sample_makes_a_synthetic_set_with_provenance(db_url, session, tiny_snapshot):
    import json

    from sqlalchemy import select

    from app.persistence.models import Image, ImageSet

    out = _cli("sample", "--model", "tiny", "--n", "6", "--seed", "5", "--size", "32", "--name", "S1")
    assert out.returncode == 0, out.stderr
    again = _cli("sample", "--model", "tiny", "--n", "6", "--seed", "5", "--size", "32", "--name", "S2")
    assert again.returncode == 0, again.stderr
    sha = json.loads((tiny_snapshot / "manifest.json").read_text())["sha256"]

    def images(name: str) -> list[Image]:
        set_id = session.scalar(
            select(ImageSet.id).where(ImageSet.name == name, ImageSet.kind == "synthetic")
        )
        return list(session.scalars(select(Image).where(Image.image_set_id == set_id).order_by(Image.id)))

    first, second = images("S1"), images("S2")
    assert [i.provenance["latent_index"] for i in first] == list(range(6))
    assert all(i.provenance["model"] == "tiny" and i.provenance["model_sha256"] == sha for i in first)
    assert all(i.provenance["seed"] == 5 for i in first)
    assert [i.sha256 for i in first] == [i.sha256 for i in second]  # deterministic per seed on CPU
    assert len({i.sha256 for i in first}) > 1


def test_unknown_model_is_a_clear_error(db_url):
    out = _cli("sample", "--model", "nope", "--n", "2")
    assert out.returncode != 0 and "no model called 'nope'" in out.stderr


def test_import_segal_then_sample(db_url, session, tmp_path, store_dir):
    from sqlalchemy import select

    from app.persistence.models import Image, ImageSet
    from tests.unit.segal_reference import authors_checkpoint

    source = tmp_path / "Final_Full_Model.pth"
    torch.save(authors_checkpoint((32, 32, 16, 16)), source)  # 4 -> 32 px, the authors' key layout
    name = "segal-test"
    try:
        out = _cli("models", "import-segal", str(source), "--name", name)
        assert out.returncode == 0, out.stderr
        assert "32 px, 3 channels" in out.stdout
        listed = _cli("models", "list")
        assert name in listed.stdout
        out = _cli("sample", "--model", name, "--n", "3", "--seed", "1", "--name", "Segal samples")
        assert out.returncode == 0, out.stderr
        set_id = session.scalar(select(ImageSet.id).where(ImageSet.name == "Segal samples"))
        images = session.scalars(select(Image).where(Image.image_set_id == set_id)).all()
        assert len(images) == 3 and all(i.provenance["model"] == name for i in images)
        again = _cli("models", "import-segal", str(source), "--name", name)
        assert again.returncode != 0 and "exists already" in again.stderr
    finally:
        shutil.rmtree(store_dir / "models" / name, ignore_errors=True)


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_import_segal_refuses_a_hostile_file(db_url, tmp_path):
    marker = tmp_path / "ran"
    hostile = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": _Payload(marker)}}, hostile)
    out = _cli("models", "import-segal", str(hostile), "--name", "evil")
    assert out.returncode != 0 and "refusing" in out.stderr.lower()
    assert not marker.exists()
