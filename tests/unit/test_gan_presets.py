"""Training presets ("engine", "authors") and the defaults the New-run form shares with the library."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from app.domain.run_kinds import TrainGanConfig  # noqa: E402
from app.gan_defaults import DEFAULT_PRESET, EMA_DECAY, PRESETS, SEGAL_BATCH_SIZES  # noqa: E402
from app.ml.gan import layers  # noqa: E402
from app.ml.gan.config import GanConfig, apply_preset, preset_settings  # noqa: E402
from app.ml.gan.data import ImageData  # noqa: E402
from app.ml.gan.layers import MinibatchStdDev  # noqa: E402
from app.ml.gan.networks import Discriminator  # noqa: E402
from app.ml.gan.schedule import TrainConfig  # noqa: E402
from app.ml.gan.train import _check_batches, fade_reals, train  # noqa: E402

SMALL = GanConfig(z_dim=16, resolution=8, channels=(16, 8))


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> object:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train_config(**kw: object) -> TrainConfig:
    base = dict(resolution=8, batch_sizes=(2, 2), fade_images=16, stable_images=16, final_stable_images=16)
    return TrainConfig(**{**base, "metrics_every": 8, "grid_every": 1000, "checkpoint_every": 1000, **kw})


def test_the_form_and_the_library_share_their_defaults() -> None:
    form = TrainGanConfig.model_fields
    library = TrainConfig()
    assert form["ema_decay"].default == library.ema_decay == EMA_DECAY == 0.999
    assert tuple(form["batch_sizes"].default) == library.batch_sizes == SEGAL_BATCH_SIZES
    assert form["preset"].default == DEFAULT_PRESET == "engine"
    base = {"image_set_id": 1, "model_name": "g", "resolution": 8, "channels": "8,8", "batch_sizes": "4,4"}
    assert TrainGanConfig.model_validate(base | {"preset": "authors"}).preset == "authors"
    with pytest.raises(ValueError, match="preset"):
        TrainGanConfig.model_validate(base | {"preset": "karras"})


def test_the_engine_preset_is_the_library_defaults() -> None:
    gan = GanConfig(z_dim=16, resolution=8, channels=(16, 8), mbstd_group=2, from_rgb_act=False)
    tcfg = _train_config(adam_eps=1e-3, batch_gpus=2, bf16=False, fade_reals=True, seed=7)
    g, t = apply_preset("engine", gan, tcfg)
    engine_gan = (4, True, False, 1, (-1.0, 1.0))
    assert (g.mbstd_group, g.from_rgb_act, g.scale_bias, g.image_channels, g.pixel_range) == engine_gan
    assert (t.adam_eps, t.batch_gpus, t.bf16, t.fade_reals) == (1e-8, 0, True, False)
    assert (g.z_dim, g.channels, t.batch_sizes, t.seed, t.fade_images) == (16, (16, 8), (2, 2), 7, 16)


def test_the_authors_preset() -> None:
    g, t = apply_preset("authors", SMALL, _train_config())
    authors_gan = (False, 0, True, 3, (0.0, 1.0))
    assert (g.from_rgb_act, g.mbstd_group, g.scale_bias, g.image_channels, g.pixel_range) == authors_gan
    assert (t.adam_eps, t.batch_gpus, t.bf16, t.fade_reals, t.ema_decay) == (1e-7, 4, False, False, 0.999)
    assert (g.channels, t.batch_sizes, t.resolution) == (SMALL.channels, (2, 2), 8)
    assert set(PRESETS) == {"engine", "authors"}
    for name in PRESETS:  # every setting a preset names is a field, and the two presets set the same ones
        gan_fields, train_fields = preset_settings(name)
        assert gan_fields.keys() == preset_settings("authors")[0].keys()
        assert train_fields.keys() == preset_settings("authors")[1].keys()
    with pytest.raises(ValueError, match="unknown preset"):
        preset_settings("karras")  # type: ignore[arg-type]


def test_a_snapshot_config_without_the_new_fields_still_loads() -> None:
    old = SMALL.to_dict()
    del old["from_rgb_act"]
    assert GanConfig.from_dict(old) == SMALL
    old_train = _train_config().to_dict()
    for key in ("batch_gpus", "fade_reals"):
        del old_train[key]
    assert TrainConfig.from_dict(old_train) == _train_config()


def test_from_rgb_activation_switch() -> None:
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    karras = Discriminator(SMALL)
    torch.manual_seed(0)
    authors = Discriminator(replace(SMALL, from_rgb_act=False))
    linear = authors.from_rgb[1](x)
    assert (linear < 0).any()
    assert torch.equal(authors._from_rgb(x, 1), linear)
    assert torch.equal(karras._from_rgb(x, 1), torch.nn.functional.leaky_relu(linear, 0.2))
    assert not torch.allclose(karras(x, 1, 0.5), authors(x, 1, 0.5))


def test_minibatch_stddev_group_zero_is_the_whole_batch() -> None:
    x = torch.randn(6, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    whole = MinibatchStdDev(0)(x)
    assert torch.equal(whole, MinibatchStdDev(6)(x))
    assert torch.allclose(whole[:, -1], whole[0, -1].expand(6, 4, 4))  # one statistic for all six
    with pytest.raises(ValueError, match="mbstd_group"):
        GanConfig(z_dim=16, resolution=8, channels=(16, 8), mbstd_group=-1)


def test_the_global_batch_must_split_over_the_gpus() -> None:
    _check_batches(_train_config(batch_sizes=(3, 3)), world=2)  # per GPU in use: 6 in all
    _check_batches(_train_config(batch_sizes=(3, 3), batch_gpus=4), world=2)  # 12 in all
    with pytest.raises(ValueError, match="does not split over 2 GPUs"):
        _check_batches(_train_config(batch_sizes=(3, 3), batch_gpus=3), world=2)
    assert _train_config(batch_gpus=4).global_batch(1, world=2) == 8
    assert _train_config().global_batch(1, world=2) == 4


def test_fade_reals_goes_from_the_coarse_image_to_the_real_one() -> None:
    real = torch.arange(16.0).view(1, 1, 4, 4)
    coarse = torch.tensor([[2.5, 4.5], [10.5, 12.5]]).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(fade_reals(real, 0.0)[0, 0], coarse)
    assert torch.equal(fade_reals(real, 1.0), real)
    assert torch.allclose(fade_reals(real, 0.25)[0, 0], 0.75 * coarse + 0.25 * real[0, 0])


def test_an_authors_run_takes_four_shares_and_groups_by_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gan, tcfg = apply_preset("authors", SMALL, _train_config())
    imgs = np.random.default_rng(1).integers(0, 256, (24, 8, 8), dtype=np.uint8)
    data = ImageData.from_arrays(imgs, resolution=8, channels=3, pixel_range=(0.0, 1.0))
    seen: list[tuple[int, int]] = []
    forward = layers.MinibatchStdDev.forward

    def spy(self: MinibatchStdDev, x: torch.Tensor) -> torch.Tensor:
        seen.append((x.shape[0], self.group_size))
        return forward(self, x)

    monkeypatch.setattr(layers.MinibatchStdDev, "forward", spy)
    result = train(gan, tcfg, data, tmp_path, device="cpu")
    assert result.images_seen == 48 and result.steps == 6  # 4 x 2 images per step
    lines = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {ln["batch"] for ln in lines} == {8}
    assert seen and set(seen) == {(8, 2)}  # four groups of two: one per GPU of the authors' four
    state = json.loads((tmp_path / "train_config.json").read_text())
    assert (state["batch_gpus"], state["adam_eps"], state["bf16"]) == (4, 1e-7, False)
