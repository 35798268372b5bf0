"""The converter for Segal et al. 2021's published PGGAN checkpoint: layout, numerics and safety."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import pickle
import shlex
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from app.ml.gan.networks import Generator  # noqa: E402
from app.ml.gan.segal import UnsafeCheckpoint, load_segal_checkpoint  # noqa: E402
from tests.unit.segal_reference import authors_checkpoint, reference_forward  # noqa: E402

CHANNELS = (32, 32, 16, 8)  # 3 growth blocks: 4 -> 32 px


@pytest.fixture
def ckpt() -> dict:
    return authors_checkpoint(CHANNELS, seed=3)


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def test_converted_generator_matches_reference_forward(ckpt: dict, tmp_path: Path) -> None:
    path = _save(ckpt, tmp_path / "Final_Full_Model.pth")
    gen, manifest = load_segal_checkpoint(path)
    cfg = gen.cfg
    assert (cfg.resolution, cfg.image_channels, cfg.z_dim) == (32, 3, 512)
    assert cfg.channels == CHANNELS and cfg.scale_bias and cfg.pixel_range == (0.0, 1.0)
    assert not gen.training
    assert manifest == {
        "source": "Segal et al. 2021 (medigan 00020_PGGAN_CHEST_XRAY)",
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "resolution": 32,
        "image_channels": 3,
        "depth": 3,
        "keys_used": 2 * (2 + 2 * 3 + 4),  # weight + bias of latent, init, 2 per block, 4 toRGB
        "alpha": 1.0,
    }
    sd = ckpt["state_dict"]
    z = torch.randn(4, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = gen(z), reference_forward(sd, z)
        raw = reference_forward(sd, z, prefix="generator.")
    assert ours.shape == (4, 3, 32, 32)
    assert float((ours - theirs).abs().max()) < 1e-5
    assert float((ours - raw).abs().max()) > 0.1  # the EMA shadow, not the raw generator, was taken


def test_bias_scaling_is_what_makes_it_match(ckpt: dict, tmp_path: Path) -> None:
    gen, _ = load_segal_checkpoint(_save(ckpt, tmp_path / "m.pth"))
    plain = Generator(dataclasses.replace(gen.cfg, scale_bias=False))
    plain.load_state_dict(gen.state_dict())
    z = torch.randn(2, 512)
    with torch.no_grad():
        assert float((plain(z) - reference_forward(ckpt["state_dict"], z)).abs().max()) > 1e-3


def test_caller_rng_is_untouched(ckpt: dict, tmp_path: Path) -> None:
    path = _save(ckpt, tmp_path / "m.pth")
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    load_segal_checkpoint(path)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda sd: sd.pop("gen_shadow.ScaleBlocks.1.convolv.3.module.bias"), "ScaleBlocks.1.convolv.3"),
        (lambda sd: sd.update({"gen_shadow.toRGB.5.module.weight": torch.zeros(3, 8, 1, 1)}), "toRGB"),
        (lambda sd: sd.update({"gen_shadow.toRGB.3.module.bias": torch.zeros(4)}), "toRGB.3.module.bias"),
        (lambda sd: sd.update({"gen_shadow.current_size": torch.tensor(64)}), "current_size"),
        (
            lambda sd: sd.update({"gen_shadow.ScaleBlocks.0.convolv.6.module.weight": torch.zeros(1)}),
            "convolv.6",
        ),
        (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("gen_shadow.")], "gen_shadow"),
    ],
)
def test_layout_errors_name_the_key(ckpt: dict, tmp_path: Path, mutate, message: str) -> None:
    mutate(ckpt["state_dict"])
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        load_segal_checkpoint(_save(ckpt, tmp_path / "m.pth"))


def test_not_a_checkpoint_dict(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="state_dict"):
        load_segal_checkpoint(_save(torch.zeros(3), tmp_path / "t.pth"))
    (tmp_path / "junk.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError):
        load_segal_checkpoint(tmp_path / "junk.pth")


class _Touch:
    """Unpickling this creates `marker` (what a hostile checkpoint would do, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class _Shell:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_the_payload_is_live(tmp_path: Path) -> None:
    # Plain unpickling runs it, so the refusal tests below could fail if the loader unpickled freely.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Touch(marker)))
    assert marker.exists()


@pytest.mark.parametrize("payload", [_Touch, _Shell])
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_hostile_pickle_is_refused_without_running(ckpt: dict, tmp_path: Path, payload, writer: str) -> None:
    marker = tmp_path / "pwned"
    # First in the dict, so a plain pickle reaches it before any tensor; genuine tensors follow.
    hostile = {"hparams": payload(marker), **ckpt}
    path = tmp_path / "Final_Full_Model.pth"
    if writer == "torch.save":
        torch.save(hostile, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(hostile, fh, protocol=2)  # torch's protocol, so the payload's global is what trips
    with pytest.raises(UnsafeCheckpoint, match="other than tensors; refusing to load it") as info:
        load_segal_checkpoint(path)
    assert "GLOBAL" in str(info.value)  # it names what it refused
    assert not marker.exists()
    assert issubclass(UnsafeCheckpoint, ValueError)
