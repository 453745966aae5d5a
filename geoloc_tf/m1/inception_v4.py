"""Inception-v4 in Keras 3: the image model M1 over mesh cells (paper §3.1.2).

The network is the one of Szegedy et al. 2016 ("Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning", figures 3-9), laid out as TF-slim's ``nets/inception_v4.py``
so that slim's ImageNet checkpoint loads by name (``slim_checkpoint.py``; the paper starts M1 from
ImageNet weights, appendix A.1):

    stem (Conv2d_1a..2b, Mixed_3a, Mixed_4a, Mixed_5a)     299 -> 35 x 35 x 384
    4 x Inception-A (Mixed_5b..5e)                        35 x 35 x 384
    Reduction-A (Mixed_6a)                                17 x 17 x 1024
    7 x Inception-B (Mixed_6b..6h)                        17 x 17 x 1024
    Reduction-B (Mixed_7a)                                8 x 8 x 1536
    3 x Inception-C (Mixed_7b..7d)                        8 x 8 x 1536
    global average pool, dropout (keep 0.8), softmax over ``num_cells``

Every convolution is slim's ``conv2d`` under ``inception_arg_scope``: no bias, batch norm without
gamma (``scale=False``, epsilon 0.001, decay 0.9997), ReLU, He-normal (fan-in) initialization and
L2 weight decay 4e-5 (slim's ``l2_regularizer(s)`` is ``s * sum(w**2) / 2``, hence ``s / 2`` in
Keras). Padding is SAME except where slim says VALID (the stride-2 reductions and the stem's 3x3s).
Slim's auxiliary head is left out: the paper does not use it and it is not part of the exported
model; its checkpoint variables are skipped when loading.

Layer names are slim's variable scopes with ``/`` written as ``.`` (Keras 3 forbids ``/`` in
names): the slim variable ``InceptionV4/Mixed_5b/Branch_0/Conv2d_0a_1x1/weights`` is the ``kernel``
of layer ``Mixed_5b.Branch_0.Conv2d_0a_1x1`` and ``.../Conv2d_0a_1x1/BatchNorm/beta`` the ``beta``
of layer ``Mixed_5b.Branch_0.Conv2d_0a_1x1.BatchNorm``. These names are an interface (checkpoint
loading, ``features_model``): do not rename them.

Knobs for toy runs on a CPU (``InceptionV4Config``): ``image_size`` down to 75 px (the smallest
input that survives the six VALID-padded stride/3x3 stages: 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3
-> 1), ``width_multiplier`` (every filter count ``f`` becomes ``max(min_filters, round(f * w))``),
and the number of A, B and C blocks.
"""

from __future__ import annotations

import dataclasses

import keras

from geoloc_tf import errors

#: Smallest input side that the VALID-padded stages reduce to at least 1 x 1 (see module docstring).
MIN_IMAGE_SIZE = 75
#: Side of the input images in the paper and in slim (``inception_v4.default_image_size``).
DEFAULT_IMAGE_SIZE = 299
#: Width of the penultimate (pre-logits) features at ``width_multiplier=1``: 6 x 256 of Inception-C.
FEATURE_DIM = 1536
#: Name of the layer whose output is the penultimate feature vector (slim's ``PreLogitsFlatten``).
FEATURES_LAYER = "Logits.PreLogitsFlatten"
#: Name of the final softmax layer (slim's ``Predictions`` end point).
PREDICTIONS_LAYER = "Predictions"


@dataclasses.dataclass(frozen=True)
class InceptionV4Config:
    """How to build M1's Inception-v4. Defaults are the paper's / slim's full-size network.

    Attributes:
      num_cells: classes of the softmax, one per mesh cell (§3.1.1); 1001 for slim's ImageNet model.
      image_size: side of the square input, >= 75 (299 in the paper, §3.1.2).
      width_multiplier: factor on every filter count (``filters``); 1.0 is the published network.
        Slim's ImageNet checkpoint only fits width 1.0.
      min_filters: lower bound of a scaled filter count.
      num_blocks_a, num_blocks_b, num_blocks_c: Inception-A/B/C blocks (4, 7, 3 in Szegedy et al.
        2016, figure 9); 0 to 25 each.
      dropout_keep_prob: keep probability before the logits (slim ``dropout_keep_prob=0.8``).
      batch_norm_decay, batch_norm_epsilon: slim's ``inception_arg_scope`` values.
      weight_decay: slim's L2 scale on conv and logits weights (4e-5); 0 disables it.
    """

    num_cells: int = 1001
    image_size: int = DEFAULT_IMAGE_SIZE
    width_multiplier: float = 1.0
    min_filters: int = 1
    num_blocks_a: int = 4
    num_blocks_b: int = 7
    num_blocks_c: int = 3
    dropout_keep_prob: float = 0.8
    batch_norm_decay: float = 0.9997
    batch_norm_epsilon: float = 0.001
    weight_decay: float = 0.00004

    def __post_init__(self):
        where = "InceptionV4Config"
        if self.num_cells < 1:
            raise errors.ModelConfigError(f"{where}.num_cells={self.num_cells}; expected >= 1")
        if self.image_size < MIN_IMAGE_SIZE:
            raise errors.ModelConfigError(
                f"{where}.image_size={self.image_size}; expected >= {MIN_IMAGE_SIZE} (smaller inputs "
                "shrink to nothing in the VALID-padded reductions)"
            )
        if not self.width_multiplier > 0:
            raise errors.ModelConfigError(f"{where}.width_multiplier={self.width_multiplier}; expected > 0")
        if self.min_filters < 1:
            raise errors.ModelConfigError(f"{where}.min_filters={self.min_filters}; expected >= 1")
        # Slim's scope letters run from b within a grid (Mixed_5b..5e, 6b..6h, 7b..7d); 25 blocks
        # reach 'z', far beyond any useful depth.
        for field in ("num_blocks_a", "num_blocks_b", "num_blocks_c"):
            if not 0 <= getattr(self, field) <= 25:
                raise errors.ModelConfigError(f"{where}.{field}={getattr(self, field)}; expected 0 to 25")
        if not 0.0 < self.dropout_keep_prob <= 1.0:
            raise errors.ModelConfigError(
                f"{where}.dropout_keep_prob={self.dropout_keep_prob}; expected in (0, 1]"
            )
        if self.weight_decay < 0:
            raise errors.ModelConfigError(f"{where}.weight_decay={self.weight_decay}; expected >= 0")

    def filters(self, published: int) -> int:
        """Filters of a layer with ``published`` filters at width 1: ``max(min_filters, round(f * w))``.

        Python's ``round`` (halves to even); e.g. 32 filters at width 0.05 -> 2, 256 -> 13.
        """
        return max(self.min_filters, int(round(published * self.width_multiplier)))


class _Builder:
    """Adds slim-style layers to a functional graph; names follow slim's variable scopes."""

    def __init__(self, config: InceptionV4Config):
        self.config = config
        decay = config.weight_decay / 2.0  # slim l2_regularizer(s) = s * sum(w^2) / 2.
        self.regularizer = keras.regularizers.L2(decay) if decay > 0 else None

    def conv(
        self,
        x,
        filters: int,
        kernel: tuple[int, int],
        name: str,
        strides: int = 1,
        padding: str = "same",
    ):
        """slim ``conv2d``: convolution without bias, batch norm without gamma, ReLU."""
        x = keras.layers.Conv2D(
            self.config.filters(filters),
            kernel,
            strides=strides,
            padding=padding,
            use_bias=False,
            kernel_initializer=keras.initializers.HeNormal(),
            kernel_regularizer=self.regularizer,
            name=name,
        )(x)
        x = keras.layers.BatchNormalization(
            axis=-1,
            momentum=self.config.batch_norm_decay,
            epsilon=self.config.batch_norm_epsilon,
            center=True,
            scale=False,
            name=f"{name}.BatchNorm",
        )(x)
        return keras.layers.ReLU(name=f"{name}.Relu")(x)

    @staticmethod
    def max_pool(x, name: str, strides: int = 2, padding: str = "valid"):
        return keras.layers.MaxPooling2D(3, strides=strides, padding=padding, name=name)(x)

    @staticmethod
    def avg_pool(x, name: str):
        # SAME average pooling excludes the padding from the mean, as tf.nn.avg_pool does in slim.
        return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)

    @staticmethod
    def concat(branches, name: str):
        return keras.layers.Concatenate(axis=-1, name=name)(branches)

    def stem(self, x):
        """Figure 3 of Szegedy et al. 2016: 299 x 299 x 3 -> 35 x 35 x 384."""
        x = self.conv(x, 32, (3, 3), "Conv2d_1a_3x3", strides=2, padding="valid")
        x = self.conv(x, 32, (3, 3), "Conv2d_2a_3x3", padding="valid")
        x = self.conv(x, 64, (3, 3), "Conv2d_2b_3x3")
        b0 = self.max_pool(x, "Mixed_3a.Branch_0.MaxPool_0a_3x3")
        b1 = self.conv(x, 96, (3, 3), "Mixed_3a.Branch_1.Conv2d_0a_3x3", strides=2, padding="valid")
        x = self.concat([b0, b1], "Mixed_3a")
        b0 = self.conv(x, 64, (1, 1), "Mixed_4a.Branch_0.Conv2d_0a_1x1")
        b0 = self.conv(b0, 96, (3, 3), "Mixed_4a.Branch_0.Conv2d_1a_3x3", padding="valid")
        b1 = self.conv(x, 64, (1, 1), "Mixed_4a.Branch_1.Conv2d_0a_1x1")
        b1 = self.conv(b1, 64, (1, 7), "Mixed_4a.Branch_1.Conv2d_0b_1x7")
        b1 = self.conv(b1, 64, (7, 1), "Mixed_4a.Branch_1.Conv2d_0c_7x1")
        b1 = self.conv(b1, 96, (3, 3), "Mixed_4a.Branch_1.Conv2d_1a_3x3", padding="valid")
        x = self.concat([b0, b1], "Mixed_4a")
        b0 = self.conv(x, 192, (3, 3), "Mixed_5a.Branch_0.Conv2d_1a_3x3", strides=2, padding="valid")
        b1 = self.max_pool(x, "Mixed_5a.Branch_1.MaxPool_1a_3x3")
        return self.concat([b0, b1], "Mixed_5a")

    def inception_a(self, x, scope: str):
        """Figure 4: 35 x 35 grid, 4 x 96 filters out."""
        b0 = self.conv(x, 96, (1, 1), f"{scope}.Branch_0.Conv2d_0a_1x1")
        b1 = self.conv(x, 64, (1, 1), f"{scope}.Branch_1.Conv2d_0a_1x1")
        b1 = self.conv(b1, 96, (3, 3), f"{scope}.Branch_1.Conv2d_0b_3x3")
        b2 = self.conv(x, 64, (1, 1), f"{scope}.Branch_2.Conv2d_0a_1x1")
        b2 = self.conv(b2, 96, (3, 3), f"{scope}.Branch_2.Conv2d_0b_3x3")
        b2 = self.conv(b2, 96, (3, 3), f"{scope}.Branch_2.Conv2d_0c_3x3")
        b3 = self.avg_pool(x, f"{scope}.Branch_3.AvgPool_0a_3x3")
        b3 = self.conv(b3, 96, (1, 1), f"{scope}.Branch_3.Conv2d_0b_1x1")
        return self.concat([b0, b1, b2, b3], scope)

    def reduction_a(self, x, scope: str):
        """Figure 7 with Inception-v4's k, l, m, n = 192, 224, 256, 384: 35 -> 17."""
        b0 = self.conv(x, 384, (3, 3), f"{scope}.Branch_0.Conv2d_1a_3x3", strides=2, padding="valid")
        b1 = self.conv(x, 192, (1, 1), f"{scope}.Branch_1.Conv2d_0a_1x1")
        b1 = self.conv(b1, 224, (3, 3), f"{scope}.Branch_1.Conv2d_0b_3x3")
        b1 = self.conv(b1, 256, (3, 3), f"{scope}.Branch_1.Conv2d_1a_3x3", strides=2, padding="valid")
        b2 = self.max_pool(x, f"{scope}.Branch_2.MaxPool_1a_3x3")
        return self.concat([b0, b1, b2], scope)

    def inception_b(self, x, scope: str):
        """Figure 5: 17 x 17 grid, 384 + 256 + 256 + 128 = 1024 filters out."""
        b0 = self.conv(x, 384, (1, 1), f"{scope}.Branch_0.Conv2d_0a_1x1")
        b1 = self.conv(x, 192, (1, 1), f"{scope}.Branch_1.Conv2d_0a_1x1")
        b1 = self.conv(b1, 224, (1, 7), f"{scope}.Branch_1.Conv2d_0b_1x7")
        b1 = self.conv(b1, 256, (7, 1), f"{scope}.Branch_1.Conv2d_0c_7x1")
        b2 = self.conv(x, 192, (1, 1), f"{scope}.Branch_2.Conv2d_0a_1x1")
        b2 = self.conv(b2, 192, (7, 1), f"{scope}.Branch_2.Conv2d_0b_7x1")
        b2 = self.conv(b2, 224, (1, 7), f"{scope}.Branch_2.Conv2d_0c_1x7")
        b2 = self.conv(b2, 224, (7, 1), f"{scope}.Branch_2.Conv2d_0d_7x1")
        b2 = self.conv(b2, 256, (1, 7), f"{scope}.Branch_2.Conv2d_0e_1x7")
        b3 = self.avg_pool(x, f"{scope}.Branch_3.AvgPool_0a_3x3")
        b3 = self.conv(b3, 128, (1, 1), f"{scope}.Branch_3.Conv2d_0b_1x1")
        return self.concat([b0, b1, b2, b3], scope)

    def reduction_b(self, x, scope: str):
        """Figure 8: 17 -> 8."""
        b0 = self.conv(x, 192, (1, 1), f"{scope}.Branch_0.Conv2d_0a_1x1")
        b0 = self.conv(b0, 192, (3, 3), f"{scope}.Branch_0.Conv2d_1a_3x3", strides=2, padding="valid")
        b1 = self.conv(x, 256, (1, 1), f"{scope}.Branch_1.Conv2d_0a_1x1")
        b1 = self.conv(b1, 256, (1, 7), f"{scope}.Branch_1.Conv2d_0b_1x7")
        b1 = self.conv(b1, 320, (7, 1), f"{scope}.Branch_1.Conv2d_0c_7x1")
        b1 = self.conv(b1, 320, (3, 3), f"{scope}.Branch_1.Conv2d_1a_3x3", strides=2, padding="valid")
        b2 = self.max_pool(x, f"{scope}.Branch_2.MaxPool_1a_3x3")
        return self.concat([b0, b1, b2], scope)

    def inception_c(self, x, scope: str):
        """Figure 6: 8 x 8 grid, 256 + 2 x 256 + 2 x 256 + 256 = 1536 filters out."""
        b0 = self.conv(x, 256, (1, 1), f"{scope}.Branch_0.Conv2d_0a_1x1")
        b1 = self.conv(x, 384, (1, 1), f"{scope}.Branch_1.Conv2d_0a_1x1")
        b1 = self.concat(
            [
                self.conv(b1, 256, (1, 3), f"{scope}.Branch_1.Conv2d_0b_1x3"),
                self.conv(b1, 256, (3, 1), f"{scope}.Branch_1.Conv2d_0c_3x1"),
            ],
            f"{scope}.Branch_1.Concat",
        )
        b2 = self.conv(x, 384, (1, 1), f"{scope}.Branch_2.Conv2d_0a_1x1")
        b2 = self.conv(b2, 448, (3, 1), f"{scope}.Branch_2.Conv2d_0b_3x1")
        b2 = self.conv(b2, 512, (1, 3), f"{scope}.Branch_2.Conv2d_0c_1x3")
        b2 = self.concat(
            [
                self.conv(b2, 256, (1, 3), f"{scope}.Branch_2.Conv2d_0d_1x3"),
                self.conv(b2, 256, (3, 1), f"{scope}.Branch_2.Conv2d_0e_3x1"),
            ],
            f"{scope}.Branch_2.Concat",
        )
        b3 = self.avg_pool(x, f"{scope}.Branch_3.AvgPool_0a_3x3")
        b3 = self.conv(b3, 256, (1, 1), f"{scope}.Branch_3.Conv2d_0b_1x1")
        return self.concat([b0, b1, b2, b3], scope)

    def base(self, x):
        """Stem and the A/B/C towers; slim ``inception_v4_base`` up to ``Mixed_7d``."""
        c = self.config
        x = self.stem(x)
        for i in range(c.num_blocks_a):
            x = self.inception_a(x, "Mixed_5" + chr(ord("b") + i))
        x = self.reduction_a(x, "Mixed_6a")
        for i in range(c.num_blocks_b):
            x = self.inception_b(x, "Mixed_6" + chr(ord("b") + i))
        x = self.reduction_b(x, "Mixed_7a")
        for i in range(c.num_blocks_c):
            x = self.inception_c(x, "Mixed_7" + chr(ord("b") + i))
        return x


def build_inception_v4(
    config: InceptionV4Config = InceptionV4Config(), name: str = "InceptionV4"
) -> keras.Model:
    """Builds M1: Inception-v4 with a softmax over ``config.num_cells`` mesh cells (§3.1.2).

    Input: float images ``(batch, image_size, image_size, 3)`` scaled to [-1, 1]
    (``geoloc_tf.preprocessing``). Output: cell probabilities ``(batch, num_cells)`` in float32,
    also under mixed precision (the ``Predictions`` softmax runs in float32). The penultimate
    features are the output of layer ``FEATURES_LAYER``; ``features_model`` exposes them.
    At 299 px, width 1.0 and 1001 classes the model holds slim's 42,712,937 variable values
    (42,649,769 trainable; the published "42.7 M"); ``tests/geoloc_tf/test_m1_inception_v4.py``
    derives the count by hand.
    """
    builder = _Builder(config)
    inputs = keras.Input((config.image_size, config.image_size, 3), name="images")
    x = builder.base(inputs)
    # slim: avg_pool over the whole 8 x 8 map (VALID), i.e. a global average.
    x = keras.layers.GlobalAveragePooling2D(name="Logits.AvgPool_1a")(x)
    features = keras.layers.Identity(name=FEATURES_LAYER)(x)
    x = keras.layers.Dropout(1.0 - config.dropout_keep_prob, name="Logits.Dropout_1b")(features)
    logits = keras.layers.Dense(
        config.num_cells,
        kernel_initializer=keras.initializers.GlorotUniform(),
        kernel_regularizer=builder.regularizer,
        name="Logits.Logits",
    )(x)
    probabilities = keras.layers.Activation("softmax", dtype="float32", name=PREDICTIONS_LAYER)(logits)
    return keras.Model(inputs, probabilities, name=name)


def features_model(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s weights that returns the penultimate features (1536-d at width 1).

    These are slim's ``PreLogitsFlatten`` activations (before dropout), the image descriptor used
    for retrieval (paper appendix B). Works for any model built by this package whose feature layer
    is named ``FEATURES_LAYER`` (Inception-v4 and the ``backbones`` models).
    """
    try:
        layer = model.get_layer(FEATURES_LAYER)
    except ValueError as error:
        raise errors.ModelConfigError(
            f"model {model.name!r} has no layer {FEATURES_LAYER!r}; expected a model built by geoloc_tf.m1"
        ) from error
    return keras.Model(model.input, layer.output, name=f"{model.name}_features")
