"""Run configs: form text becomes typed values, each kind's rules hold, unknown fields are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.domain.run_kinds import KINDS, SampleConfig, TrainGanConfig


def test_form_text_becomes_typed_values():
    cfg = TrainGanConfig.model_validate(
        {
            "image_set_id": "3",
            "model_name": "g8",
            "resolution": "8",
            "channels": "16, 16",
            "batch_sizes": "8,8",
        }
    )
    assert (cfg.image_set_id, cfg.resolution, cfg.channels, cfg.batch_sizes) == (3, 8, (16, 16), (8, 8))
    assert SampleConfig.model_validate({"model": "m", "size": ""}).size is None


@pytest.mark.parametrize(
    "values,message",
    [
        ({"resolution": "64", "channels": "16,16"}, "channels needs 5 values"),
        ({"resolution": "48"}, "Input should be 8, 16"),
        ({"batch_sizes": "8,0,8,8,8"}, "batch sizes must be positive"),
        ({"model_name": "Bad Name"}, "should match pattern"),
        ({"surprise": "1"}, "Extra inputs are not permitted"),
        ({"fd_classifier": "c", "fd_inception": "true"}, "not both"),
    ],
)
def test_train_gan_rules(values, message):
    base = {"image_set_id": 1, "model_name": "g", "resolution": 64, "batch_sizes": "8,8,8,8,8"}
    with pytest.raises(ValidationError, match=message):
        TrainGanConfig.model_validate(base | values)


def test_every_kind_names_a_queue_and_a_documented_config():
    for name, kind in KINDS.items():
        assert kind.name == name and kind.queue in ("gpu", "cpu") and kind.config.__doc__
        for field, info in kind.config.model_fields.items():
            assert info.title, f"{name}.{field} needs a title for its form"


def test_every_kind_has_its_own_check_and_a_task_of_its_name():
    from app.domain import run_checks
    from app.jobs.tasks import BODIES

    assert set(BODIES) == set(KINDS)
    for name, kind in KINDS.items():
        # The kind's own check: the function of run_checks named after it, saying what it checks.
        assert kind.check is getattr(run_checks, name) and kind.check.__doc__, name
