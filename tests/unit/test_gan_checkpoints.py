"""PGGAN checkpoints: bit-exact resume on CPU, snapshot round trip without unpickling, atomic writes."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import numpy as np  # noqa: E402

from app.ml.gan import checkpoints  # noqa: E402
from app.ml.gan.checkpoints import (  # noqa: E402
    atomic_write,
    capture_rng,
    load_model,
    load_resume,
    restore_rng,
    save_model,
    save_resume,
)
from app.ml.gan.config import GanConfig  # noqa: E402
from app.ml.gan.data import ImageData  # noqa: E402
from app.ml.gan.networks import Generator  # noqa: E402
from app.ml.gan.schedule import TrainConfig  # noqa: E402
from app.ml.gan.train import train  # noqa: E402

CFG = GanConfig(z_dim=16, resolution=8, channels=(16, 8))
# 4 px: 64 images (8 steps); 8 px: 64 fade-in + 64 stable; 24 steps of 8 in all
TCFG = TrainConfig(
    resolution=8,
    fade_images=64,
    stable_images=64,
    final_stable_images=64,
    batch_sizes=(8, 8),
    hflip=True,  # exercise every random stream the loop has
    ema_rampup=True,
    metrics_every=32,
    grid_every=96,
    checkpoint_every=48,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks; OpenMP barriers stall on a busy 2-core machine
    yield
    torch.set_num_threads(threads)


def _images() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (20, 8, 8), dtype=np.uint8)  # (20, 8, 8)


def _assert_same(a: object, b: object, where: str = "") -> None:
    """Recursive equality: tensors bit for bit, containers key by key."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}/{i}")
    else:
        assert a == b, where


def test_resume_is_bit_exact(tmp_path: Path) -> None:
    straight = train(CFG, TCFG, ImageData.from_arrays(_images(), resolution=8), tmp_path / "straight")
    assert straight.steps == 24 and not straight.aborted

    calls = []
    first = train(
        CFG,
        TCFG,
        ImageData.from_arrays(_images(), resolution=8),
        tmp_path / "split",
        abort_fn=lambda: calls.append(1) or len(calls) > 5,  # stop after 5 steps, inside the 4 px stage
    )
    assert first.aborted and first.steps == 5

    # a "fresh process": scrambled global RNGs and every object rebuilt from disk
    torch.manual_seed(12345)
    np.random.seed(54321)
    random.seed(999)
    cfg = GanConfig.from_dict(json.loads((tmp_path / "split" / "config.json").read_text()))
    tcfg = TrainConfig.from_dict(json.loads((tmp_path / "split" / "train_config.json").read_text()))
    second = train(
        cfg,
        tcfg,
        ImageData.from_arrays(_images(), resolution=8),
        tmp_path / "split",
        resume=tmp_path / "split" / "resume.pt",
    )
    assert second.steps == 24 and second.images_seen == straight.images_seen

    a, b = load_resume(tmp_path / "straight"), load_resume(tmp_path / "split")
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "sampler", "noise", "rng"):
        _assert_same(a[key], b[key], key)
    assert {k: v for k, v in a["counters"].items() if k != "wall_s"} == {
        k: v for k, v in b["counters"].items() if k != "wall_s"
    }
    ma = json.loads((tmp_path / "straight" / "snapshot" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "split" / "snapshot" / "manifest.json").read_text())
    assert ma["sha256"] == mb["sha256"]  # identical EMA generator files
    # the resumed run's log continues the first one's without duplicates
    lines = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [x["images_seen"] for x in lines] == [32, 64, 96, 128, 160, 192]


def test_rng_states_survive_a_weights_only_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    state = capture_rng()
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.save(state, tmp_path / "rng.pt")
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_snapshot_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(7)
    G = Generator(CFG)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # non-zero biases too, not just a fresh init
    path = save_model(G, tmp_path / "snap", manifest={"note": "test"}, images_seen=1234)
    rng_before = torch.get_rng_state()
    G2, manifest = load_model(path)
    assert torch.equal(torch.get_rng_state(), rng_before)  # loading leaves the caller's RNG alone
    assert G2.cfg == CFG and not G2.training
    assert manifest["note"] == "test" and manifest["images_seen"] == 1234 and manifest["resolution"] == 8
    z = torch.randn(5, CFG.z_dim)
    with torch.no_grad():
        for depth, alpha in ((0, 1.0), (1, 0.3), (1, 1.0)):
            assert torch.equal(G(z, depth, alpha), G2(z, depth, alpha))
    assert json.loads((path / "config.json").read_text()) == CFG.to_dict()


def test_load_model_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(8)
    path = save_model(Generator(CFG), tmp_path / "snap", manifest={})

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    G, _ = load_model(path)
    assert isinstance(G, Generator)


def test_snapshot_with_altered_weights_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(9)
    path = save_model(Generator(CFG), tmp_path / "snap", manifest={})
    blob = bytearray((path / "generator.safetensors").read_bytes())
    blob[-1] ^= 1
    (path / "generator.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="sha256"):
        load_model(path)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    torch.manual_seed(10)
    save_model(Generator(CFG), tmp_path / "snap", manifest={})
    save_model(Generator(CFG), tmp_path / "snap", manifest={})  # overwrite in place
    for step in range(3):
        save_resume(tmp_path, {"counters": {"step": step}})
    assert _leftovers(tmp_path / "snap") == [] and _leftovers(tmp_path) == []
    assert load_resume(tmp_path)["counters"]["step"] == 2
    assert load_resume(tmp_path / checkpoints.PREVIOUS_RESUME_FILE)["counters"]["step"] == 1

    target = tmp_path / "data.bin"
    atomic_write(target, lambda f: f.write(b"old"))

    def crash(f: object) -> None:
        f.write(b"half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_resume_state_loads_with_weights_only(tmp_path: Path) -> None:
    train(
        CFG,
        TCFG,
        ImageData.from_arrays(_images(), resolution=8),
        tmp_path,
        abort_fn=lambda: True,
    )
    # weights_only=True refuses arbitrary objects, so this proves the state is tensors and plain data
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    assert state["format"] == checkpoints.RESUME_FORMAT and state["counters"]["images_seen"] == 0
