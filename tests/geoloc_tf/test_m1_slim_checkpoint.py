"""Loading TF-slim's Inception-v4 checkpoint (appendix A.1: M1 starts from ImageNet weights).

There is no internet here, so each test writes a checkpoint under slim's variable names itself
(``tf.raw_ops.SaveV2`` writes arbitrary names), from a tiny model whose values are made distinct.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from geoloc_tf import errors
from geoloc_tf.m1 import slim_checkpoint
from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4, features_model
from tests.geoloc_tf.conftest import TINY

# 11 stem + 7 (A) + 4 (reduction A) + 10 (B) + 6 (reduction B) + 10 (C) convs, each with a kernel
# and BatchNorm beta, moving_mean, moving_variance.
TINY_CONVS = 48


def slim_name(keras_layer: str, keras_variable: str) -> str:
    """The test's own statement of the naming rule, independent of the library's."""
    leaf = {"kernel": "weights", "bias": "biases"}.get(keras_variable, keras_variable)
    return "InceptionV4/" + keras_layer.replace(".", "/") + "/" + leaf


def distinct_values(model, seed: int) -> dict[str, np.ndarray]:
    """Gives every variable of ``model`` its own values; returns them by slim name."""
    rng = np.random.default_rng(seed)
    values = {}
    for index, layer_variable in enumerate((l, v) for l in model.layers for v in l.weights):
        layer, variable = layer_variable
        value = (index + rng.uniform(0.1, 0.9, variable.shape)).astype(np.float32)
        if variable.name == "moving_variance":
            value = value + 1.0
        variable.assign(value)
        values[slim_name(layer.name, variable.name)] = value
    return values


@pytest.fixture(scope="module")
def source():
    model = build_inception_v4(TINY)
    return model, distinct_values(model, seed=1)


def write_slim(tmp_path, values, extra=True, drop=()):
    tensors = {k: v for k, v in values.items() if k not in drop}
    if extra:  # What the real inception_v4.ckpt holds besides the tower.
        tensors["InceptionV4/AuxLogits/Aux_logits/weights"] = np.zeros((768, 1001), np.float32)
        tensors["InceptionV4/AuxLogits/Conv2d_1b_1x1/weights"] = np.zeros((1, 1, 51, 6), np.float32)
        tensors["global_step"] = np.array(1000, np.int64)
    return slim_checkpoint.write_slim_checkpoint(str(tmp_path / "inception_v4.ckpt"), tensors)


def test_every_slim_name_lands_on_its_keras_variable(tmp_path, source, caplog):
    model_a, values = source
    # Spot checks of names and shapes against slim's nets/inception_v4.py at width 0.05.
    assert values["InceptionV4/Conv2d_1a_3x3/weights"].shape == (3, 3, 3, 2)  # round(32 * .05)
    # Mixed_5a concatenates round(192 * .05) = 10 conv and 2 x 5 max-pooled channels: 20 in.
    assert values["InceptionV4/Mixed_5b/Branch_0/Conv2d_0a_1x1/weights"].shape == (1, 1, 20, 5)
    assert values["InceptionV4/Mixed_6b/Branch_1/Conv2d_0b_1x7/weights"].shape == (1, 7, 10, 11)
    assert values["InceptionV4/Mixed_7b/Branch_2/Conv2d_0e_3x1/BatchNorm/moving_variance"].shape == (13,)
    assert values["InceptionV4/Logits/Logits/weights"].shape == (78, 7)
    assert len(values) == 4 * TINY_CONVS + 2
    prefix = write_slim(tmp_path, values)

    model_b = build_inception_v4(TINY)
    with caplog.at_level(logging.WARNING, logger=slim_checkpoint.__name__):
        report = slim_checkpoint.load_slim_checkpoint(model_b, prefix)

    assert len(report.loaded) == 4 * TINY_CONVS
    assert report.not_loaded == ("Logits.Logits/kernel", "Logits.Logits/bias")
    assert "Logits.Logits/kernel" in caplog.text
    assert report.skipped == (
        "InceptionV4/AuxLogits/Aux_logits/weights",
        "InceptionV4/AuxLogits/Conv2d_1b_1x1/weights",
        "InceptionV4/Logits/Logits/biases",
        "InceptionV4/Logits/Logits/weights",
    )
    assert report.unused == ("global_step",)
    for layer in model_b.layers:
        for variable in layer.weights:
            name = slim_name(layer.name, variable.name)
            if name.startswith("InceptionV4/Logits/"):
                assert not np.array_equal(variable.numpy(), values[name])
            else:
                np.testing.assert_array_equal(variable.numpy(), values[name], err_msg=name)
    # With the logits too, the two models compute the same features and probabilities.
    slim_checkpoint.load_slim_checkpoint(model_b, prefix, skip_prefixes=())
    images = np.random.default_rng(2).uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)
    np.testing.assert_allclose(features_model(model_b)(images), features_model(model_a)(images), rtol=1e-5)


def test_a_variable_missing_from_the_checkpoint_is_listed(tmp_path, source):
    _, values = source
    missing = "InceptionV4/Mixed_6b/Branch_3/Conv2d_0b_1x1/BatchNorm/moving_mean"
    prefix = write_slim(tmp_path, values, extra=False, drop=(missing,))
    report = slim_checkpoint.load_slim_checkpoint(build_inception_v4(TINY), prefix)
    assert report.not_loaded == (
        "Mixed_6b.Branch_3.Conv2d_0b_1x1.BatchNorm/moving_mean",
        "Logits.Logits/kernel",
        "Logits.Logits/bias",
    )
    assert len(report.loaded) == 4 * TINY_CONVS - 1


def test_shape_mismatch_names_the_variable_and_assigns_nothing(tmp_path, source):
    _, values = source
    prefix = write_slim(tmp_path, values)
    wider = build_inception_v4(
        InceptionV4Config(
            num_cells=7,
            image_size=75,
            width_multiplier=0.1,
            num_blocks_a=1,
            num_blocks_b=1,
            num_blocks_c=1,
        )
    )
    before = [v.numpy().copy() for v in wider.weights]
    with pytest.raises(errors.CheckpointError) as raised:
        slim_checkpoint.load_slim_checkpoint(wider, prefix)
    message = str(raised.value)
    assert "'InceptionV4/Conv2d_1a_3x3/weights'" in message
    assert "(3, 3, 3, 2)" in message and "(3, 3, 3, 3)" in message  # round(32 * 0.1) = 3
    for old, variable in zip(before, wider.weights):
        np.testing.assert_array_equal(old, variable.numpy())


def test_unreadable_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(errors.CheckpointError, match="nothing_here"):
        slim_checkpoint.initialize_from(build_inception_v4(TINY), str(tmp_path / "nothing_here"))


def test_keras_file_loads_by_name_and_skips_the_logits(tmp_path, source):
    model_a, _ = source
    path = str(tmp_path / "previous_cycle.keras")
    model_a.save(path)
    model_b = build_inception_v4(TINY)
    report = slim_checkpoint.initialize_from(model_b, path)
    assert report.not_loaded == ("Logits.Logits/kernel", "Logits.Logits/bias")
    assert len(report.loaded) == 4 * TINY_CONVS
    kernel = "Mixed_7b.Branch_0.Conv2d_0a_1x1"
    np.testing.assert_array_equal(
        model_b.get_layer(kernel).kernel.numpy(), model_a.get_layer(kernel).kernel.numpy()
    )


def test_weights_file_and_slim_export_round_trip(tmp_path, source):
    import tensorflow as tf

    model_a, values = source
    model_a.save_weights(str(tmp_path / "m1.weights.h5"))
    model_b = build_inception_v4(TINY)
    report = slim_checkpoint.initialize_from(model_b, str(tmp_path / "m1.weights.h5"))
    assert len(report.loaded) == 4 * TINY_CONVS + 2 and report.not_loaded == ()
    np.testing.assert_array_equal(
        model_b.get_layer("Logits.Logits").kernel.numpy(),
        values["InceptionV4/Logits/Logits/weights"],
    )
    # Writing the model back under slim names gives exactly the names the test derived.
    prefix = slim_checkpoint.save_as_slim_checkpoint(model_b, str(tmp_path / "back.ckpt"))
    assert {name for name, _ in tf.train.list_variables(prefix)} == set(values)
