"""Image preprocessing of M1's evaluation, prediction and exported SavedModel: one definition.

The serving signature must see exactly the pixels the model was evaluated on, so the transform is
the data pipeline's own evaluation transform (`data_pipelines.augmentation.eval_image`): decode
the JPEG, keep the central `central_fraction` of each side (0.875, the Inception evaluation crop of
TF-slim's `inception_preprocessing.preprocess_for_eval`), resize bilinearly to the model's square
input (299 px for Inception-v4, paper §3.1.2) and scale [0, 1] to [-1, 1]. This module only gives
it the signature the export and `geoloc evaluate` need (a size instead of an InputConfig) and a
batched form.
"""

from __future__ import annotations

import tensorflow as tf

from data_pipelines.augmentation import eval_image as _pipeline_eval_image
from data_pipelines.config import InputConfig

#: Fraction of each side kept by the evaluation crop (slim `preprocess_for_eval` default).
CENTRAL_FRACTION = InputConfig.central_fraction


def eval_image(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """Encoded JPEG (scalar tf.string) -> float32 (image_size, image_size, 3) in [-1, 1].

    Grey-scale and CMYK JPEGs come out as RGB.
    """
    config = InputConfig(
        image_size=image_size, central_fraction=central_fraction, training=False, value_range=(-1.0, 1.0)
    )
    return _pipeline_eval_image(image_bytes, config)


def eval_batch(
    image_bytes: tf.Tensor, image_size: int, central_fraction: float = CENTRAL_FRACTION
) -> tf.Tensor:
    """A batch of encoded JPEGs (shape (B,), tf.string) -> float32 (B, image_size, image_size, 3).

    Images of different sizes are fine: each is decoded and resized on its own (`tf.map_fn`).
    """
    return tf.map_fn(
        lambda data: eval_image(data, image_size, central_fraction),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )
