"""M2's architecture against Table 2, its two input forms, saving, and the SAMME update."""

import keras
import numpy as np
import pytest

from geoloc_tf.layers import sparsify_top_k
from geoloc_tf.m2.boosting import samme_update
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m2.model import build_m2, input_width, transfer_weights
from mesh.settings import SettingError


@pytest.mark.parametrize("num_cells", [538, 6565])  # Table 2: coarse and fine mesh
def test_layer_sizes_equal_table_2(num_cells):
    model = build_m2(num_cells)
    assert model.get_layer("m2_input").output.shape == (None, num_cells + 4)  # row 1: N+4
    assert input_width(num_cells, M2Config()) == num_cells + 4
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [542 * 3] * 3 + [num_cells]  # rows 2-5
    assert [
        model.get_layer(f"m2_block{i}_{a}").activation.__name__
        for i, a in ((1, "sigmoid"), (2, "relu"), (3, "sigmoid"))
    ] == ["sigmoid", "relu", "sigmoid"]
    assert dense[-1].activation.__name__ == "linear"  # row 5's softmax is its own layer
    assert model.get_layer("m2_softmax").activation.__name__ == "softmax"
    assert len([l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]) == 3
    dropouts = [l for l in model.layers if isinstance(l, keras.layers.Dropout)]
    assert [l.rate for l in dropouts] == [0.5] * 3
    assert model.output.shape == (None, num_cells)
    assert model.get_layer("m2_block1_dense").kernel.shape == (num_cells + 4, 1626)


def test_m1_prior_starts_as_m1_with_its_tail_flattened(tmp_path):
    # M1 says [0.1, 0.6, 0.2, 0.05, 0.05]; top 2: cells 1 and 2 (mass 0.8) keep 0.6 and 0.2, the
    # other three cells share the remaining 0.2 evenly: M2 starts at [0.2/3, 0.6, 0.2, 0.2/3, 0.2/3].
    probs = np.array([[0.1, 0.6, 0.2, 0.05, 0.05]], np.float32)
    data = M2Data.from_dense(probs, np.array([1_500_000_000]), k=2)
    model = build_m2(5, M2Config(top_k=2, hidden_units=8, m1_prior=True))
    expected = np.array([0.2 / 3, 0.6, 0.2, 0.2 / 3, 0.2 / 3])
    np.testing.assert_allclose(model.predict(data.model_inputs(), verbose=0)[0], expected, rtol=1e-5)
    assert not np.any(model.get_layer("m2_output").kernel.numpy())  # the correction starts at 0
    model.save(tmp_path / "m2.keras")  # the prior layer saves and loads
    np.testing.assert_allclose(
        keras.models.load_model(tmp_path / "m2.keras").predict(data.model_inputs(), verbose=0)[0],
        expected,
        rtol=1e-5,
    )


def test_outdoor_extra_input_widens_input():
    config = M2Config(hidden_units=8, extra_inputs=("outdoor",))
    model = build_m2(20, config)
    assert model.get_layer("m2_input").output.shape == (None, 25)
    assert set(model.input) == {"cell_ids", "cell_probs", "time", "outdoor"}


def test_dense_and_top_k_forms_agree_and_save(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(30), 8).astype(np.float32)
    data = M2Data.from_dense(probs, rng.integers(1.4e9, 1.6e9, 8), k=10)
    config = M2Config(hidden_units=16)
    keras.utils.set_random_seed(1)
    sparse_model = build_m2(30, config)
    dense_model = build_m2(30, config, input_form="dense")
    copied = transfer_weights(sparse_model, dense_model)
    assert "m2_output" in copied and "m2_block2_bn" in copied
    sparse_inputs = data.model_inputs()
    dense_inputs = {"probs": probs, "time": sparse_inputs["time"]}
    expected = sparse_model.predict(sparse_inputs, verbose=0)
    np.testing.assert_allclose(dense_model.predict(dense_inputs, verbose=0), expected, rtol=1e-5)

    path = tmp_path / "m2.keras"
    sparse_model.save(path)
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(sparse_inputs, verbose=0), expected, rtol=1e-6
    )


def test_config_rejects_bad_values():
    with pytest.raises(SettingError, match="M2Config.extra_inputs=weather: must be one of outdoor"):
        M2Config(extra_inputs=("weather",))
    with pytest.raises(SettingError, match="M2Config.learning_rates"):
        M2Config(learning_rates=())
    with pytest.raises(SettingError, match="M2Config.dropout=1.0: must be < 1.0"):
        M2Config(dropout=1.0)  # Keras' Dropout refuses a rate of 1


def test_samme_update_by_hand():
    # 4 photos of equal weight, 1 wrong, K = 3 classes: err = 1/4,
    # alpha = log(3) + log(2) = log 6; the wrong photo's weight x6 -> (1, 1, 1, 6) / mean 9/4.
    step = samme_update(np.ones(4), [False, True, False, False], num_classes=3)
    assert step.error == pytest.approx(0.25)
    assert step.alpha == pytest.approx(np.log(6.0))
    np.testing.assert_allclose(step.weights, np.array([1, 6, 1, 1]) / 2.25)
    assert step.useful
    # No better than chance (err = 1 - 1/K): alpha = 0 and the weights stay.
    chance = samme_update(np.ones(3), [True, True, False], num_classes=3)
    assert chance.alpha == pytest.approx(0.0, abs=1e-12) and not chance.useful
    np.testing.assert_allclose(chance.weights, 1.0)


def test_m1_top1_is_the_best_stored_cell():
    ids, values = sparsify_top_k(np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]), k=2)
    data = M2Data(cell_ids=ids, cell_probs=values, posted_at=np.zeros(2, np.int64))
    np.testing.assert_array_equal(data.m1_top1(), [1, 0])


def test_predict_top_k_in_chunks_matches_full_predict():
    from geoloc_tf.chunked_top_k import predict_top_k

    rng = np.random.default_rng(2)
    data = M2Data.from_dense(rng.dirichlet(np.ones(15), 10), rng.integers(1.4e9, 1.6e9, 10))
    keras.utils.set_random_seed(0)
    model = build_m2(15, M2Config(hidden_units=8))
    inputs = data.model_inputs()
    full = model.predict(inputs, verbose=0)
    ids, probs = predict_top_k(model, inputs, k=3, chunk_size=4)
    assert ids.shape == probs.shape == (10, 3)
    np.testing.assert_array_equal(ids[:, 0], full.argmax(axis=1))
    np.testing.assert_allclose(probs, np.take_along_axis(full, ids, axis=1), rtol=1e-5)
