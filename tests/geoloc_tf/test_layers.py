"""Operator (1) of Figure 3 and its sparse-input helpers, on vectors checkable by hand."""

import keras
import numpy as np
import pytest

from geoloc_tf import errors
from geoloc_tf.layers import (
    AlbumEvidence,
    DensifyTopK,
    PostingTimeFeatures,
    TopKSparsifyNormalize,
    densify_top_k,
    sparsify_top_k,
)


def test_keeps_top_k_renormalizes_and_appends_norm():
    probs = np.array([[0.05, 0.4, 0.1, 0.3, 0.15]], np.float32)
    out = np.asarray(TopKSparsifyNormalize(k=2)(probs))
    # Kept: 0.4 (cell 1) and 0.3 (cell 3); |p0| = 0.7; renormalized 4/7 and 3/7.
    np.testing.assert_allclose(out, [[0, 4 / 7, 0, 3 / 7, 0, 0.7]], rtol=1e-6)
    assert out.shape == (1, 6)
    np.testing.assert_allclose(out[0, :5].sum(), 1.0, rtol=1e-6)


def test_ties_keep_lowest_index():
    probs = np.array([[0.1, 0.2, 0.2, 0.2, 0.3]], np.float32)
    out = np.asarray(TopKSparsifyNormalize(k=2)(probs))
    # 0.3 at cell 4, then a three-way tie at 0.2: cell 1 (lowest index) wins.
    np.testing.assert_allclose(out, [[0, 0.4, 0, 0, 0.6, 0.5]], rtol=1e-6)
    ids, values = sparsify_top_k(probs, k=2)
    np.testing.assert_array_equal(ids, [[4, 1]])
    np.testing.assert_allclose(values, [[0.3, 0.2]])


def test_default_k_is_ten_and_album_axis_and_zero_rows():
    probs = np.zeros((2, 3, 12), np.float32)
    probs[0, 0] = np.arange(12) / 66.0  # sums to 1; top 10 are cells 2..11, sum 65/66
    out = np.asarray(TopKSparsifyNormalize()(probs))
    assert out.shape == (2, 3, 13)
    np.testing.assert_allclose(out[0, 0, :2], 0.0)
    np.testing.assert_allclose(out[0, 0, 2:12], np.arange(2, 12) / 65.0, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0, 12], 65 / 66, rtol=1e-6)
    # An all-zero (padded) row gives zeros and |p0| = 0, never NaN.
    np.testing.assert_array_equal(out[1], 0.0)


def test_rejects_fewer_cells_than_k():
    with pytest.raises(errors.ModelConfigError, match="at least k=10"):
        TopKSparsifyNormalize()(np.ones((1, 5), np.float32))


def test_densify_sparse_top_k_matches_numpy_and_ignores_missing():
    ids = np.array([[3, 1, -1], [0, 2, 4]])
    probs = np.array([[0.5, 0.2, 0.9], [0.1, 0.2, 0.3]], np.float32)
    expected = [[0, 0.2, 0, 0.5, 0], [0.1, 0, 0.2, 0, 0.3]]
    np.testing.assert_allclose(densify_top_k(ids, probs, 5), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(DensifyTopK(5)([ids, probs])), expected, rtol=1e-6)
    # Operator (1) on the densified stored top-k equals operator (1) on the full vector.
    full = np.array([[0.05, 0.4, 0.1, 0.3, 0.15]], np.float32)
    sparse_ids, sparse_probs = sparsify_top_k(full, k=3)
    layer = TopKSparsifyNormalize(k=2)
    np.testing.assert_allclose(layer(densify_top_k(sparse_ids, sparse_probs, 5)), layer(full))


def test_serialization_round_trip_in_functional_model(tmp_path):
    ids = keras.Input((3,), dtype="int32", name="cell_ids")
    probs = keras.Input((3,), name="cell_probs")
    posted_at = keras.Input((), dtype="int64", name="posted_at")
    dense = DensifyTopK(6, name="densify")([ids, probs])
    features = TopKSparsifyNormalize(k=2, name="top_k")(dense)
    x = keras.layers.Concatenate()([features, PostingTimeFeatures(name="time")(posted_at)])
    model = keras.Model([ids, probs, posted_at], keras.layers.Dense(4, name="head")(x))
    assert model.get_layer("top_k").get_config()["k"] == 2
    assert model.get_layer("densify").get_config()["num_cells"] == 6

    data = [
        np.array([[5, 0, 2]], np.int32),
        np.array([[0.5, 0.3, 0.1]], np.float32),
        np.array([1483228800], np.int64),
    ]
    path = tmp_path / "layers.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("top_k"), TopKSparsifyNormalize)
    assert loaded.get_layer("top_k").k == 2
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-6)


def test_album_evidence_adds_the_log_mean_softmax_of_the_real_photos():
    # One album: two real photos over 2 cells, softmax [0.5, 0.5] and [0.8, 0.2]; a padded
    # position with junk logits. Mean over the real photos: [0.65, 0.35].
    logits = np.array([[[0.0, 0.0], [np.log(4.0), 0.0], [9.0, -9.0]]], np.float32)
    mask = np.array([[True, True, False]])
    layer = AlbumEvidence(alpha_init=0.0)
    np.testing.assert_allclose(np.asarray(layer(logits, album_mask=mask)), logits)  # alpha 0
    layer.alpha.assign(2.0)
    out = np.asarray(layer(logits, album_mask=mask))
    evidence = 2.0 * np.log([0.65, 0.35])
    np.testing.assert_allclose(out[0, :2], logits[0, :2] + evidence, rtol=1e-5)
    junk = logits.copy()
    junk[0, 2] = [-5.0, 7.0]  # the padded position changes nothing at the real ones
    np.testing.assert_allclose(np.asarray(layer(junk, album_mask=mask))[0, :2], out[0, :2], rtol=1e-6)
