"""M1's Inception-v4: size of the published network, shapes at toy size, names, learning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from geoloc_tf import errors
from geoloc_tf.m1 import backbones, inception_v4
from geoloc_tf.m1.inception_v4 import InceptionV4Config, build_inception_v4, features_model
from tests.geoloc_tf.conftest import TINY


def _conv_weights(convs):
    return sum(kh * kw * cin * cout for kh, kw, cin, cout in convs)


def _bn_channels(convs):
    return sum(cout for *_, cout in convs)


def slim_count_by_hand():
    """(all variable values, trainable values) of slim inception_v4, 1001 classes, no aux head.

    Every (kh, kw, in, out) below is read off slim's nets/inception_v4.py; each conv has a kernel
    and, per output channel, BatchNorm beta (trainable), moving_mean and moving_variance.
    """
    stem = [
        (3, 3, 3, 32),
        (3, 3, 32, 32),
        (3, 3, 32, 64),
        (3, 3, 64, 96),  # 1a 2a 2b 3a
        (1, 1, 160, 64),
        (3, 3, 64, 96),  # 4a branch 0
        (1, 1, 160, 64),
        (1, 7, 64, 64),
        (7, 1, 64, 64),
        (3, 3, 64, 96),  # 4a branch 1
        (3, 3, 192, 192),
    ]  # 5a
    block_a = [
        (1, 1, 384, 96),
        (1, 1, 384, 64),
        (3, 3, 64, 96),
        (1, 1, 384, 64),
        (3, 3, 64, 96),
        (3, 3, 96, 96),
        (1, 1, 384, 96),
    ]
    reduction_a = [(3, 3, 384, 384), (1, 1, 384, 192), (3, 3, 192, 224), (3, 3, 224, 256)]
    block_b = [
        (1, 1, 1024, 384),
        (1, 1, 1024, 192),
        (1, 7, 192, 224),
        (7, 1, 224, 256),
        (1, 1, 1024, 192),
        (7, 1, 192, 192),
        (1, 7, 192, 224),
        (7, 1, 224, 224),
        (1, 7, 224, 256),
        (1, 1, 1024, 128),
    ]
    reduction_b = [
        (1, 1, 1024, 192),
        (3, 3, 192, 192),
        (1, 1, 1024, 256),
        (1, 7, 256, 256),
        (7, 1, 256, 320),
        (3, 3, 320, 320),
    ]
    block_c = [
        (1, 1, 1536, 256),
        (1, 1, 1536, 384),
        (1, 3, 384, 256),
        (3, 1, 384, 256),
        (1, 1, 1536, 384),
        (3, 1, 384, 448),
        (1, 3, 448, 512),
        (1, 3, 512, 256),
        (3, 1, 512, 256),
        (1, 1, 1536, 256),
    ]
    convs = stem + 4 * block_a + reduction_a + 7 * block_b + reduction_b + 3 * block_c
    assert len(convs) == 149
    weights, channels = _conv_weights(convs), _bn_channels(convs)
    assert (weights, channels) == (41_079_648, 31_584)
    logits = 1536 * 1001 + 1001
    return weights + 3 * channels + logits, weights + channels + logits


def test_full_size_parameter_count_matches_slim_and_the_published_42_7_million():
    total, trainable = slim_count_by_hand()
    assert (total, trainable) == (42_712_937, 42_649_769)
    model = build_inception_v4(InceptionV4Config())  # 299 px, 1001 classes; built, never run.
    assert model.count_params() == total
    assert sum(int(np.prod(v.shape)) for v in model.trainable_variables) == trainable
    assert abs(total - 42.7e6) / 42.7e6 < 0.01
    assert sum(isinstance(l, keras.layers.Conv2D) for l in model.layers) == 149
    # Grid sizes of Szegedy et al. 2016, figure 9.
    assert model.get_layer("Mixed_5a").output.shape[1:] == (35, 35, 384)
    assert model.get_layer("Mixed_6a").output.shape[1:] == (17, 17, 1024)
    assert model.get_layer("Mixed_7d").output.shape[1:] == (8, 8, 1536)
    assert features_model(model).output.shape[1:] == (inception_v4.FEATURE_DIM,)


def test_tiny_model_shapes_at_75_px():
    model = build_inception_v4(TINY)
    # 75 -> 37 -> 35 (stem convs) -> 17 (Mixed_3a) -> 15 (Mixed_4a) -> 7 -> 3 -> 1.
    assert model.get_layer("Conv2d_1a_3x3").output.shape[1:3] == (37, 37)
    assert model.get_layer("Mixed_5a").output.shape[1:3] == (7, 7)
    assert model.get_layer("Mixed_6a").output.shape[1:3] == (3, 3)
    assert model.get_layer("Mixed_7a").output.shape[1:3] == (1, 1)
    # Width 0.05: Inception-C's six 256-filter outputs become round(12.8) = 13 each.
    assert TINY.filters(256) == 13 and TINY.filters(32) == 2 and TINY.filters(3) == 1
    images = np.random.default_rng(0).uniform(-1, 1, (2, 75, 75, 3)).astype(np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0], rtol=1e-5)
    features = np.asarray(features_model(model)(images, training=False))
    assert features.shape == (2, 6 * 13)
    assert np.all(features >= 0)  # Average of ReLU outputs.


def test_layer_names_follow_slim_scopes_and_batch_norm_has_no_gamma():
    model = build_inception_v4(TINY)
    names = {layer.name for layer in model.layers}
    for name in (
        "Conv2d_1a_3x3",
        "Mixed_3a.Branch_1.Conv2d_0a_3x3",
        "Mixed_5b.Branch_0.Conv2d_0a_1x1.BatchNorm",
        "Mixed_6a.Branch_1.Conv2d_1a_3x3",
        "Mixed_6b.Branch_2.Conv2d_0e_1x7",
        "Mixed_7b.Branch_2.Conv2d_0e_3x1",
        "Logits.Logits",
        "Logits.PreLogitsFlatten",
    ):
        assert name in names
    bn = model.get_layer("Mixed_5b.Branch_0.Conv2d_0a_1x1.BatchNorm")
    assert sorted(v.name for v in bn.weights) == ["beta", "moving_mean", "moving_variance"]
    assert bn.momentum == 0.9997 and bn.epsilon == 0.001
    conv = model.get_layer("Mixed_5b.Branch_0.Conv2d_0a_1x1")
    assert conv.use_bias is False and conv.padding == "same"
    assert model.get_layer("Mixed_6a.Branch_0.Conv2d_1a_3x3").padding == "valid"
    assert model.get_layer("Logits.Dropout_1b").rate == pytest.approx(0.2)  # keep 0.8
    # slim's SAME average pooling divides by the number of real pixels: ones stay ones at corners.
    pool = model.get_layer("Mixed_5b.Branch_3.AvgPool_0a_3x3")
    np.testing.assert_allclose(np.asarray(pool(np.ones((1, 4, 4, 1), np.float32))), 1.0)


@pytest.mark.parametrize(
    "field,value",
    [
        ("image_size", 74),
        ("width_multiplier", 0.0),
        ("num_blocks_b", -1),
        ("dropout_keep_prob", 0.0),
    ],
)
def test_invalid_config_is_a_model_config_error(field, value):
    with pytest.raises(errors.ModelConfigError, match=field):
        InceptionV4Config(**{field: value})


def test_loss_decreases_on_a_tiny_learnable_set():
    """Three classes told apart by colour; 36 images of 75 px, three epochs of Adagrad (A.1).

    One Inception-A block and no B/C blocks: tracing the training step of a deeper graph costs
    more time than this 2-core CI has (the full tower's forward pass is covered above).
    """
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    colours = np.array([[0.8, -0.8, -0.8], [-0.8, 0.8, -0.8], [-0.8, -0.8, 0.8]], np.float32)
    labels = np.tile(np.arange(3), 12)
    images = (colours[labels][:, None, None, :] + rng.normal(0, 0.3, (36, 75, 75, 3))).astype(np.float32)
    config = InceptionV4Config(
        num_cells=3,
        image_size=75,
        width_multiplier=0.1,
        num_blocks_a=1,
        num_blocks_b=0,
        num_blocks_c=0,
    )
    model = build_inception_v4(config)
    model.compile(optimizer=keras.optimizers.Adagrad(0.05), loss="sparse_categorical_crossentropy")
    history = model.fit(images, labels, batch_size=12, epochs=3, shuffle=True, verbose=0)
    losses = history.history["loss"]
    assert losses[0] > np.log(3) * 0.7  # Starts near chance.
    assert losses[-1] < 0.7 * losses[0], losses


def test_applications_backbone_gets_the_same_head_and_feature_layer(tmp_path):
    # A user's weights file for the headless network (here written from a random one) is loaded.
    notop = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
    )
    notop.save_weights(str(tmp_path / "resnet50_notop.weights.h5"))
    model = backbones.build_applications_model(
        "resnet50", num_cells=5, image_size=32, weights=str(tmp_path / "resnet50_notop.weights.h5")
    )
    np.testing.assert_array_equal(
        model.get_layer("conv5_block3_3_conv").kernel.numpy(),
        notop.get_layer("conv5_block3_3_conv").kernel.numpy(),
    )
    assert model.output_shape == (None, 5)
    assert features_model(model).output_shape == (None, 2048)
    # The adapter maps [-1, 1] RGB to Caffe BGR minus the ImageNet means: white -> 255 - mean.
    adapter = model.get_layer("caffe_preprocessing")
    out = np.asarray(adapter(np.ones((1, 1, 1, 3), np.float32)))[0, 0, 0]
    np.testing.assert_allclose(out, [255 - 103.939, 255 - 116.779, 255 - 123.68], rtol=1e-6)
    with pytest.raises(errors.ModelConfigError, match="'vgg16'; expected one of inception_v4, "):
        backbones.build_m1_model("vgg16", InceptionV4Config(num_cells=5))
