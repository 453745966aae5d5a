"""The m1 stage hands every --m1_* and --runtime_* setting to the library's configs."""

import dataclasses

from experiments.config import M1Section, RunConfig, RuntimeSection
from experiments.stages.m1_stage import train_config

# A valid value other than the default for every field of the two sections.
M1_VALUES = dict(
    backbone="resnet50", image_size=96, blocks=(1, 2, 1), width_multiplier=0.5,
    global_batch_size=16, init_checkpoint="imagenet.ckpt", adagrad_learning_rate=0.02,
    examples_per_cell=7, epoch_growth=0.1, alpha_schedule=(0.0, 0.5), cycle_epochs=3,
    sgd_learning_rate=0.004, sgd_decay_per_epoch=0.05, sgd_momentum=0.9, crop_area_min=0.3,
    color_jitter=False, augment_on="device", sgd_epochs=2, validation_photos=64,
    checkpoint_every_steps=7, dropout_keep=0.5, batch_norm_decay=0.99)
RUNTIME_VALUES = dict(strategy="mirrored", mixed_precision=True, jit_compile=True,
                      input_autotune=True)


def test_every_m1_and_runtime_setting_reaches_the_training_configs():
    assert set(M1_VALUES) == {f.name for f in dataclasses.fields(M1Section)}
    assert set(RUNTIME_VALUES) == {f.name for f in dataclasses.fields(RuntimeSection)}
    m1, runtime = train_config(RunConfig(m1=M1Section(**M1_VALUES),
                                         runtime=RuntimeSection(**RUNTIME_VALUES)))
    for name, value in M1_VALUES.items():
        held = getattr(m1.sampler, name) if hasattr(m1.sampler, name) else getattr(m1, name)
        assert held == value, name
    assert dataclasses.asdict(runtime) == RUNTIME_VALUES


def test_defaults_of_the_runner_and_the_library_agree():
    m1, runtime = train_config(RunConfig())
    from geoloc_tf.m1.config import M1Config
    from geoloc_tf.runtime_config import RuntimeConfig

    assert m1 == M1Config() and runtime == RuntimeConfig()
