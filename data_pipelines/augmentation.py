"""Inception-style image preprocessing on the host: training augmentation and the evaluation crop.

Training (``augment_image``, Szegedy et al. 2016 preprocessing): a random crop covering
``area_range`` of the photo, of which only the crop is decoded (``decode_random_crop``), a random
left-right flip, resize to ``image_size`` (299, Inception v4), colour jitter (brightness,
saturation, hue, contrast) and scaling to ``value_range``. Evaluation (``eval_image``): a central
crop, resize, scale.

Every random op is stateless with a per-image int64[2] seed (``draws``), so a parallel map does
not change the result, and the accelerator's half of the same transform (packed by
``data_pipelines.device_augment``, applied by ``geoloc_tf.m1.device_augment``) draws the same
numbers and transforms an image alike; both take the colour jitter from ``color.color_affine``.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from data_pipelines.color import color_affine
from data_pipelines.config import InputConfig


def _scale(image, config: InputConfig):
    low, high = config.value_range
    return image * (high - low) + low


def color_jitter(image, seed, config: InputConfig):
    """Random brightness, saturation, hue and contrast (Inception ranges) on [0, 1] pixels."""
    mean = tf.reduce_mean(tf.reshape(image, [-1, 3]), axis=0, keepdims=True)
    uniform = tf.random.stateless_uniform([4], seed, dtype=tf.float32)
    a, c = color_affine(uniform, config, mean, tf)
    return tf.reshape(tf.reshape(image, [-1, 3]) @ a + c, tf.shape(image))


def _random_crop_window(image_bytes, seed, config: InputConfig):
    """Inception's random crop, chosen from the JPEG header alone: ``[y, x, height, width]``.

    Covers ``area_range`` of the image with aspect ``aspect_ratio_range`` (Szegedy et al. 2016
    preprocessing); ``tf.io.decode_and_crop_jpeg`` then decodes only this window.
    """
    shape = tf.image.extract_jpeg_shape(image_bytes)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=config.min_object_covered,
        aspect_ratio_range=config.aspect_ratio_range,
        area_range=config.area_range,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def draws(seed):
    """The random draws of one training image from its int64[2] ``seed``: the crop's seed, and
    five uniforms in [0, 1): flip (< 0.5: flip), then brightness, saturation, hue, contrast.
    Both augmentation modes derive them the same way, so they transform an image alike."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    return seeds[0], tf.random.stateless_uniform([5], seeds[1], dtype=tf.float32)


def decode_random_crop(image_bytes, crop_seed, config: InputConfig):
    """uint8 [h, w, 3]: the Inception random crop, and only it, decoded from the JPEG."""
    window = _random_crop_window(image_bytes, crop_seed, config)
    return tf.io.decode_and_crop_jpeg(image_bytes, window, channels=3)


def crop_flip_resize(image_bytes, crop_seed, flip_draw, config: InputConfig):
    """Decode only the random crop, flip it (on uint8: cheaper), resize: float32 in [0, 255].

    Bilinear interpolation of uint8 pixels stays in [0, 255], so nothing needs clipping here.
    """
    crop = decode_random_crop(image_bytes, crop_seed, config)
    if config.flip:
        crop = tf.cond(flip_draw < 0.5, lambda: tf.reverse(crop, [1]), lambda: crop)
    image = tf.image.resize(crop, [config.image_size, config.image_size], method="bilinear")
    return tf.ensure_shape(image, [config.image_size, config.image_size, 3])


def _jitter_and_scale(image, uniform, config: InputConfig):
    """Colour jitter, scaling to ``value_range`` and clipping of one image as a single affine
    map + clip. ``image``: float32 [h, w, 3] in [0, 255]; ``uniform``: the four colour draws.

    Contrast is about the mean of the resized image (``tf.image.adjust_contrast`` applied after
    the resize, as in Inception preprocessing). Under XLA the 3x3 colour matrix is applied as
    three broadcast multiply-adds, which fuse with the clip into one pass (a [pixels, 3] @ [3, 3]
    matmul does not fuse and costs about 1.5x more); without XLA the matmul is the faster form
    (the broadcast form is then one pass per op, about 2x slower).
    """
    low, high = config.value_range
    if config.color_jitter:
        mean = tf.reduce_mean(image, axis=[0, 1])[None] / 255.0  # [1, 3]
        a, c = color_affine(uniform, config, mean, tf)
        a = a * ((high - low) / 255.0)
        c = c[0] * (high - low) + low
        if config.jit_compile_color:
            out = image[..., 0:1] * a[0] + image[..., 1:2] * a[1] + image[..., 2:3] * a[2] + c
        else:
            out = tf.reshape(tf.reshape(image, [-1, 3]) @ a + c, tf.shape(image))
    else:
        out = image * ((high - low) / 255.0) + low
    return tf.clip_by_value(out, low, high)


@functools.lru_cache(maxsize=None)
def _fused_jitter_and_scale(config: InputConfig):
    """``_jitter_and_scale`` for ``config``, compiled by XLA when ``config.jit_compile_color``.

    XLA fuses the mean, the affine map and the clip into about two passes over the pixels; as
    separate TensorFlow ops each is a full pass with its own output buffer. Measured on a 2-core
    CPU (one thread, 299 px): about 0.6 ms per image fused against 1.7 ms for the matmul form,
    where decoding the whole JPEG costs about 1 ms.
    """
    return tf.function(
        lambda image, uniform: _jitter_and_scale(image, uniform, config),
        jit_compile=config.jit_compile_color,
        autograph=False,
    )


def augment_image(image_bytes, seed, config: InputConfig):
    """Inception-style training preprocessing with stateless ops; ``seed`` is an int64[2].

    Random crop covering 8-100 % of the area with aspect 3/4-4/3 (only the crop is decoded),
    random left-right flip, resize, colour jitter (brightness, saturation, hue, contrast), scaling
    to ``value_range``, clipping; the last three are one fused affine map + clip.
    """
    crop_seed, uniform = draws(seed)
    image = crop_flip_resize(image_bytes, crop_seed, uniform[0], config)
    return _fused_jitter_and_scale(config)(image, uniform[1:])


def eval_resize_pixels(pixels, config: InputConfig):
    """Central crop (``central_fraction``) and bilinear resize of decoded uint8 (h, w, 3) pixels:
    float32 (size, size, 3) in [0, 255], the evaluation transform between decoding and scaling
    (rounded to uint8, the pixels M1's LiteRT and ONNX exports take)."""
    image = tf.image.central_crop(pixels, config.central_fraction)
    return tf.image.resize(image, [config.image_size, config.image_size], method="bilinear")


def eval_resize(image_bytes, config: InputConfig):
    """Decode, then ``eval_resize_pixels``: float32 (size, size, 3) in [0, 255]."""
    return eval_resize_pixels(tf.io.decode_jpeg(image_bytes, channels=3), config)


def eval_scale(pixels, config: InputConfig):
    """Pixels in [0, 255] (float32) -> ``value_range``, clipped: the last step of ``eval_image``."""
    return _scale(tf.clip_by_value(pixels / 255.0, 0.0, 1.0), config)


def eval_image(image_bytes, config: InputConfig):
    """Central crop (``central_fraction``), resize, scale: the Inception evaluation transform.

    The crop and the bilinear resize read the decoded uint8 pixels (the resize computes in float32
    and returns float32) and only the model-sized result is scaled to [0, 1]: bilinear weights sum
    to 1, so this equals converting first, while a 50-megapixel photo costs 150 MB, not 750 MB.
    """
    return eval_scale(eval_resize(image_bytes, config), config)
