"""Image preprocessing shared by M1's evaluation input, prediction and the exported SavedModel.

One definition, so that the serving signature sees exactly the pixels the model was evaluated on:
decode the JPEG, keep the central ``central_fraction`` of each side (0.875, the Inception
evaluation crop of TF-slim's ``inception_preprocessing.preprocess_for_eval``), resize bilinearly to
the model's square input (299 px for Inception-v4, paper §3.1.2) and scale [0, 1] to [-1, 1], the
range Inception networks are trained on. The ops and their order are those of
``data_pipelines.input_pipeline.eval_image`` with ``value_range=(-1, 1)``.
"""

from __future__ import annotations

import tensorflow as tf

#: Fraction of each side kept by the evaluation crop (slim ``preprocess_for_eval`` default).
CENTRAL_FRACTION = 0.875


def to_inception_range(image: tf.Tensor) -> tf.Tensor:
    """[0, 1] floats -> [-1, 1] (Inception preprocessing; values outside [0, 1] are clipped first)."""
    image = tf.clip_by_value(image, 0.0, 1.0)
    return image * 2.0 - 1.0


def from_inception_range(image: tf.Tensor) -> tf.Tensor:
    """[-1, 1] -> [0, 1]; the inverse of ``to_inception_range`` (for plots and re-encoding)."""
    return (image + 1.0) / 2.0


def central_crop_and_resize(
    image: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A decoded uint8/float image (H, W, 3) -> float32 (image_size, image_size, 3) in [0, 1]."""
    image = tf.image.convert_image_dtype(image, tf.float32)
    if central_fraction < 1.0:
        image = tf.image.central_crop(image, central_fraction)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")
    return tf.clip_by_value(image, 0.0, 1.0)


def eval_image(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """Encoded JPEG (scalar tf.string) -> float32 (image_size, image_size, 3) in [-1, 1].

    Grey-scale and CMYK JPEGs come out as RGB (``channels=3``).
    """
    image = tf.io.decode_jpeg(image_bytes, channels=3)
    return to_inception_range(central_crop_and_resize(image, image_size, central_fraction))


def eval_batch(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A batch of encoded JPEGs (shape (B,), tf.string) -> float32 (B, image_size, image_size, 3).

    Images of different sizes are fine: each is decoded and resized on its own (``tf.map_fn``).
    """
    return tf.map_fn(
        lambda data: eval_image(data, image_size, central_fraction),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
