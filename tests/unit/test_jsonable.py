"""The config dataclasses' one JSON form: a round trip through JSON text gives back an equal config."""

from __future__ import annotations

import json

import pytest

from app.ml.classifier.config import ClassifierConfig, ClassifierTrainConfig
from app.ml.gan.config import GanConfig
from app.ml.gan.schedule import TrainConfig
from app.ml.lco.optimise import LcoConfig


@pytest.mark.parametrize(
    "config",
    [
        GanConfig(resolution=16, channels=(32, 16, 8)),
        TrainConfig(resolution=16, batch_sizes=(8, 8, 4), betas=(0.0, 0.9)),
        ClassifierConfig(findings=("Effusion", "Mass")),
        ClassifierTrainConfig(epochs=2, extra={"note": "x"}),
        LcoConfig(steps=10),
    ],
    ids=lambda c: type(c).__name__,
)
def test_a_config_survives_json_equal_to_itself(config):
    data = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(data) == config
    assert not any(isinstance(v, tuple) for v in config.to_dict().values())


def test_an_unknown_key_is_an_error():
    data = LcoConfig().to_dict() | {"from_the_future": 1}
    with pytest.raises(TypeError):
        LcoConfig.from_dict(data)
