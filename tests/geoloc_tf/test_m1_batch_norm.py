"""Precise BN (geoloc_tf.m1.batch_norm): population statistics by hand on tiny models."""

from __future__ import annotations

import numpy as np


def _model(layers: int = 1):
    import keras

    inputs = keras.Input((2,))
    x = inputs
    for i in range(layers):
        x = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=f"bn{i}")(x)
    return keras.Model(inputs, x)


def test_the_moving_statistics_become_the_mean_and_variance_of_every_photo_seen():
    from geoloc_tf.m1 import batch_norm

    model = _model()
    batches = [np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([[5.0, 6.0], [7.0, 8.0]], np.float32)]
    assert batch_norm.recalibrate(model, iter(batches)) == 4
    layer = model.get_layer("bn0")
    # Channel 0 saw 1, 3, 5, 7: mean 4, population variance (9 + 1 + 1 + 9) / 4 = 5; channel 1
    # saw 2, 4, 6, 8: mean 5, variance 5. The mean of the per-batch variances would be 1.
    np.testing.assert_allclose(layer.moving_mean.numpy(), [4.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), [5.0, 5.0], rtol=1e-6)
    assert layer.momentum == 0.99  # restored
    # Inference now normalizes with those statistics: (7 - 4) / sqrt(5 + 0.001).
    out = model.predict(np.array([[7.0, 5.0]], np.float32), verbose=0)
    np.testing.assert_allclose(out[0], [3.0 / np.sqrt(5.001), 0.0], rtol=1e-5, atol=1e-6)


def test_a_layer_sees_its_input_normalized_by_the_batch_as_in_training():
    """The second layer's input is the first layer's output under batch statistics: per batch,
    mean 0 and variance v / (v + eps) with v the batch's variance (1 for both batches here)."""
    from geoloc_tf.m1 import batch_norm

    model = _model(layers=2)
    batches = [np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([[5.0, 6.0], [7.0, 8.0]], np.float32)]
    batch_norm.recalibrate(model, iter(batches))
    second = model.get_layer("bn1")
    np.testing.assert_allclose(second.moving_mean.numpy(), [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(second.moving_variance.numpy(), [1.0 / 1.001] * 2, rtol=1e-5)


def test_no_image_changes_nothing_and_nothing_is_trained():
    from geoloc_tf.m1 import batch_norm

    model = _model()
    before = [v.numpy().copy() for v in model.variables]
    assert batch_norm.recalibrate(model, iter([])) == 0
    for v, b in zip(model.variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    batch_norm.recalibrate(model, iter([np.ones((3, 2), np.float32)]))
    for v, b in zip(model.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)  # beta and gamma untouched
