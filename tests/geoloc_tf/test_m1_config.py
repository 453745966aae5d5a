"""M1's settings: what M1Config and SamplerConfig refuse, and what they derive."""

import dataclasses

import pytest

from data_pipelines.config import SamplerConfig
from geoloc_tf.m1.config import M1Config
from mesh.settings import SettingError


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: M1Config(blocks=(4, 7)), "M1Config.blocks=4,7: three counts are needed"),
        (lambda: M1Config(image_size=64), "M1Config.image_size=64: must be >= 75"),
        (lambda: M1Config(backbone="vgg"), "M1Config.backbone='vgg': must be one of inception_v4"),
        (
            lambda: SamplerConfig(alpha_schedule=(0.0, 1.5)),
            "SamplerConfig.alpha_schedule=0.0,1.5: must be <= 1.0",
        ),
        (lambda: SamplerConfig(alpha_schedule=()), "at least one value is needed"),
        (lambda: SamplerConfig(shard_fraction=0.0), "SamplerConfig.shard_fraction=0.0: must be > 0.0"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(make, message):
    with pytest.raises(SettingError, match=message.replace("(", r"\(")):
        make()


def test_backbone_choices_are_the_networks_m1_builds():
    """--m1_backbone offers exactly the networks geoloc_tf.m1.backbones builds (Inception-v4 and
    the Keras applications): the choices the setting declares, which the flag and M1Config's
    check read."""
    from geoloc_tf.m1.backbones import APPLICATIONS_BACKBONES

    (field,) = [f for f in dataclasses.fields(M1Config) if f.name == "backbone"]
    assert sorted(field.metadata["choices"]) == sorted(("inception_v4", *APPLICATIONS_BACKBONES))


def test_epochs_and_learning_rates_follow_the_sampler_schedule():
    config = M1Config(
        sampler=SamplerConfig(alpha_schedule=(0.0, 0.5, 1.0), cycle_epochs=2),
        sgd_epochs=3,
        adagrad_learning_rate=0.05,
        sgd_learning_rate=0.01,
        sgd_decay_per_epoch=0.5,
    )
    assert (config.biased_epochs, config.total_epochs) == (6, 9)
    assert [config.learning_rate(e) for e in (0, 5, 6, 7, 8)] == [0.05, 0.05, 0.01, 0.005, 0.0]
