"""``--m1_backbone``: M1 on a ``keras.applications`` network instead of Inception-v4.

The paper's M1 is Inception-v4 (§3.1.2; ``inception_v4.py``). Users who have ImageNet weights of
another network as a Keras weights file (there is no internet access to download them here, so
``weights=None`` is the default) can put the same head on it: global average pool, the feature
layer ``Logits.PreLogitsFlatten`` (so ``features_model`` works), dropout (keep 0.8), a softmax
over the mesh cells. Inputs are always [-1, 1] images (``geoloc_tf.preprocessing``); each backbone
gets the adapter its ImageNet weights expect, as a serializable layer, so the same input pipeline
and export serve every backbone.
"""

from __future__ import annotations

import keras

from geoloc_tf import errors
from geoloc_tf.m1 import inception_v4
from geoloc_tf.m1.config import BACKBONES  # every value --m1_backbone accepts, declared there

#: Caffe-style ImageNet means in BGR order (``keras.applications.resnet50.preprocess_input``).
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="geoloc_m1")
class InceptionToCaffe(keras.layers.Layer):
    """[-1, 1] RGB -> Caffe-style BGR minus the ImageNet means (what ResNet50's weights expect)."""

    def call(self, images):
        pixels = (images + 1.0) * 127.5
        bgr = keras.ops.flip(pixels, axis=-1)
        return bgr - keras.ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=bgr.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def _applications(constructor, preprocess=None, **options):
    """A builder of a keras.applications network without its top, average-pooled, on input `x`.

    `preprocess` adapts our [-1, 1] input to what the network was trained on (ResNet50: Caffe BGR
    minus mean); EfficientNetV2 takes [-1, 1] as it is with `include_preprocessing=False`.
    """

    def build(x, weights, size):
        if preprocess is not None:
            x = preprocess()(x)
        return constructor(
            include_top=False,
            weights=weights,
            input_tensor=x,
            input_shape=(size, size, 3),
            pooling="avg",
            **options,
        )

    return build


#: Backbone name -> (builder, smallest input side keras.applications accepts).
_APPLICATIONS = {
    "inception_v3": (_applications(keras.applications.InceptionV3), 75),
    "inception_resnet_v2": (_applications(keras.applications.InceptionResNetV2), 75),
    "resnet50": (
        _applications(keras.applications.ResNet50, lambda: InceptionToCaffe(name="caffe_preprocessing")),
        32,
    ),
    "efficientnet_v2_s": (_applications(keras.applications.EfficientNetV2S, include_preprocessing=False), 32),
}
#: The backbones built here: every one of ``BACKBONES`` but the paper's ``inception_v4`` (a test
#: keeps the two equal).
APPLICATIONS_BACKBONES: tuple[str, ...] = tuple(_APPLICATIONS)


def build_applications_model(
    backbone: str,
    num_cells: int,
    image_size: int = 299,
    *,
    weights: str | None = None,
    dropout_keep_prob: float = 0.8,
) -> keras.Model:
    """A ``keras.applications`` backbone with M1's head (module docstring).

    Args:
      backbone: one of ``BACKBONES`` other than ``inception_v4``.
      num_cells: classes of the softmax.
      image_size: square input side.
      weights: ``None`` (random initialization) or the path of a Keras weights file for the
        backbone without its top (``include_top=False``), e.g. the ``*_notop.h5`` files.
      dropout_keep_prob: as in Inception-v4 (slim 0.8).
    """
    if backbone not in _APPLICATIONS:
        raise errors.ModelConfigError(
            f"m1 backbone {backbone!r} is not a keras.applications backbone; expected one of "
            f"{sorted(_APPLICATIONS)}"
        )
    build, min_size = _APPLICATIONS[backbone]
    if image_size < min_size:
        raise errors.ModelConfigError(
            f"image_size={image_size} for backbone {backbone!r}; expected >= {min_size}"
        )
    if num_cells < 1:
        raise errors.ModelConfigError(f"num_cells={num_cells}; expected >= 1")
    inputs = keras.Input((image_size, image_size, 3), name="images")
    try:
        base = build(inputs, weights, image_size)
    except (ValueError, OSError) as error:
        raise errors.CheckpointError(
            f"cannot build {backbone!r} with weights={weights!r} ({error}); expected None or a "
            "Keras weights file of the network without its top"
        ) from error
    features = keras.layers.Identity(name=inception_v4.FEATURES_LAYER)(base.output)
    x = keras.layers.Dropout(1.0 - dropout_keep_prob, name="Logits.Dropout_1b")(features)
    logits = keras.layers.Dense(num_cells, name="Logits.Logits")(x)
    probabilities = keras.layers.Activation("softmax", dtype="float32", name=inception_v4.PREDICTIONS_LAYER)(
        logits
    )
    return keras.Model(inputs, probabilities, name=f"m1_{backbone}")


def build_m1_model(
    backbone: str = "inception_v4",
    config: inception_v4.InceptionV4Config = inception_v4.InceptionV4Config(),
    weights: str | None = None,
) -> keras.Model:
    """M1 for ``--m1_backbone``: Inception-v4 from ``config``, or an applications network.

    For applications backbones only ``num_cells``, ``image_size`` and ``dropout_keep_prob`` of
    ``config`` apply; ``weights`` is their weights file. Inception-v4 is initialized from a
    checkpoint with ``slim_checkpoint.initialize_from`` instead (``weights`` must be None).
    """
    if backbone not in BACKBONES:
        raise errors.ModelConfigError(f"m1 backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
    if backbone == "inception_v4":
        if weights is not None:
            raise errors.ModelConfigError(
                "weights= is for keras.applications backbones; load Inception-v4 weights with "
                "geoloc_tf.m1.slim_checkpoint.initialize_from"
            )
        return inception_v4.build_inception_v4(config)
    return build_applications_model(
        backbone,
        config.num_cells,
        config.image_size,
        weights=weights,
        dropout_keep_prob=config.dropout_keep_prob,
    )
