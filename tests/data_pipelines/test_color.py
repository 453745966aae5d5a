"""The colour jitter as one affine map (``color.color_affine``): values checked by hand, one image
and a batch alike, numpy and TensorFlow alike."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from data_pipelines.color import color_affine
from data_pipelines.config import InputConfig

#: Draws in the middle of every range: no brightness change, saturation 1, no hue turn, contrast 1.
NEUTRAL = [0.5, 0.5, 0.5, 0.5]
MEAN = np.array([[0.2, 0.4, 0.6]], np.float32)


def affine(uniform, config=InputConfig(), mean=MEAN):
    return color_affine(np.asarray(uniform, np.float32), config, mean, np)


def test_neutral_draws_leave_pixels_as_they_are():
    a, c = affine(NEUTRAL)
    np.testing.assert_allclose(a, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(c, np.zeros((1, 3)), atol=1e-6)


def test_brightness_adds_to_every_channel_and_contrast_scales_about_the_mean():
    # The highest brightness draw: +32/255 on every channel.
    a, c = affine([1.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(a, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(c, np.full((1, 3), 32 / 255), atol=1e-6)
    # The lowest contrast draw (0.5): x -> 0.5 x + 0.5 mean.
    a, c = affine([0.5, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(a, 0.5 * np.eye(3), atol=1e-6)
    np.testing.assert_allclose(c, 0.5 * MEAN, atol=1e-6)


def test_no_saturation_leaves_the_luma_in_every_channel():
    config = InputConfig(saturation_range=(0.0, 1.0))
    a, c = affine([0.5, 0.0, 0.5, 0.5], config)
    luma = np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(a, np.repeat(luma[:, None], 3, axis=1), atol=1e-5)
    np.testing.assert_allclose(c, np.zeros((1, 3)), atol=1e-6)


def test_a_half_turn_of_hue_mirrors_the_colour_through_its_grey():
    # Hue turns the (I, Q) plane: by half a turn, rgb = Y + chroma becomes Y - chroma = 2 Y - rgb.
    config = InputConfig(hue_delta=0.5)  # the highest draw turns by half a turn
    a, _ = affine([0.5, 0.5, 1.0, 0.5], config)
    np.testing.assert_allclose(np.array([1.0, 0.0, 0.0]) @ a, [-0.402, 0.598, 0.598], atol=1e-5)
    np.testing.assert_allclose(np.array([0.5, 0.5, 0.5]) @ a, [0.5, 0.5, 0.5], atol=1e-5)


def test_a_batch_equals_its_images_one_by_one_on_tensorflow_too():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(size=(5, 4)).astype(np.float32)
    mean = rng.uniform(size=(5, 1, 3)).astype(np.float32)
    a, c = color_affine(uniform, InputConfig(), mean, np)
    assert a.shape == (5, 3, 3) and c.shape == (5, 1, 3)
    a_tf, c_tf = color_affine(tf.constant(uniform), InputConfig(), tf.constant(mean), tf)
    np.testing.assert_allclose(a_tf.numpy(), a, atol=1e-6)
    np.testing.assert_allclose(c_tf.numpy(), c, atol=1e-6)
    for i in range(5):
        a_i, c_i = affine(uniform[i], mean=mean[i])
        np.testing.assert_allclose(a_i, a[i], atol=1e-6)
        np.testing.assert_allclose(c_i, c[i], atol=1e-6)
