"""M3's album masking: padded positions change neither real outputs nor the loss nor training."""

import keras
import numpy as np
import pandas as pd
import pytest

from data_pipelines.albums import build_albums
from geoloc_tf import errors
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m2.model import build_m2
from geoloc_tf.m3.config import M3Config
from geoloc_tf.m3.data import album_arrays, photo_values, training_draws
from geoloc_tf.m3.model import build_m3
from mesh.settings import SettingError

NUM_CELLS, ALBUM = 12, 6


def small_config(dropout=0.0, album_evidence=False):
    """(M3Config, the M2Config of its per-photo part), as build_m3 takes them."""
    return (
        M3Config(album_size=ALBUM, lstm_units=4, init_from_m2=False, album_evidence=album_evidence),
        M2Config(top_k=3, hidden_units=8, dropout=dropout),
    )


def album_batch(rng, real=(4, 6)):
    """Two albums, 4 and 6 real photos; padded positions zero (as the albums module pads)."""
    mask = np.arange(ALBUM)[None, :] < np.array(real)[:, None]
    probs = rng.dirichlet(np.ones(NUM_CELLS), (2, ALBUM)).astype(np.float32)
    ids = np.argsort(-probs, axis=-1)[..., :3].astype(np.int32)
    inputs = {
        "cell_ids": ids,
        "cell_probs": np.take_along_axis(probs, ids, -1),
        "time": rng.uniform(-0.5, 0.5, (2, ALBUM, 3)).astype(np.float32),
        "mask": mask,
    }
    for name in ("cell_ids", "cell_probs", "time"):
        inputs[name][~mask] = 0
    labels = np.where(mask, rng.integers(0, NUM_CELLS, (2, ALBUM)), 0)
    return inputs, labels, mask


def with_garbage(inputs, mask, rng):
    """The same albums with random junk where padded."""
    junk = {name: value.copy() for name, value in inputs.items()}
    junk["cell_ids"][~mask] = rng.integers(0, NUM_CELLS, junk["cell_ids"][~mask].shape)
    junk["cell_probs"][~mask] = rng.uniform(0, 5, junk["cell_probs"][~mask].shape)
    junk["time"][~mask] = rng.uniform(-9, 9, junk["time"][~mask].shape)
    return junk


@pytest.mark.parametrize("album_evidence", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_padding_changes_neither_real_outputs_nor_loss(training, album_evidence):
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = build_m3(NUM_CELLS, *small_config(album_evidence=album_evidence))
    inputs, labels, mask = album_batch(rng)
    junk = with_garbage(inputs, mask, rng)
    # training=True: batch statistics of the batch norms must come from real photos only.
    clean_out = np.asarray(model(inputs, training=training))
    junk_out = np.asarray(model(junk, training=training))
    np.testing.assert_allclose(junk_out[mask], clean_out[mask], rtol=1e-5, atol=1e-6)
    loss = keras.losses.SparseCategoricalCrossentropy()
    weight = mask.astype(np.float32)
    assert float(loss(labels, junk_out, sample_weight=weight)) == pytest.approx(
        float(loss(labels, clean_out, sample_weight=weight)), rel=1e-5
    )
    # Changing a label at a padded position changes nothing either.
    other = labels.copy()
    other[~mask] = NUM_CELLS - 1
    assert float(loss(other, clean_out, sample_weight=weight)) == pytest.approx(
        float(loss(labels, clean_out, sample_weight=weight)), rel=1e-6
    )


def test_loss_ignores_padding_through_a_training_step():
    rng = np.random.default_rng(1)
    inputs, labels, mask = album_batch(rng)
    junk = with_garbage(inputs, mask, rng)
    weights = []
    for batch in (inputs, junk):
        keras.utils.set_random_seed(0)
        model = build_m3(NUM_CELLS, *small_config())
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy())
        loss = model.train_on_batch(batch, labels, sample_weight=mask.astype(np.float32))
        weights.append((loss, model.get_weights()))
    assert weights[0][0] == pytest.approx(weights[1][0], rel=1e-5)
    for clean, junked in zip(weights[0][1], weights[1][1]):
        np.testing.assert_allclose(junked, clean, rtol=1e-5, atol=1e-6)


def test_albums_from_a_table_and_back():
    # User a: 3 photos, user b: 8 photos (albums of 6: b gets 6 + 2). Times shuffled on purpose.
    table = pd.DataFrame(
        {
            "user_hash": ["a"] * 3 + ["b"] * 8,
            "posted_at": [30, 10, 20, 8, 7, 6, 5, 4, 3, 2, 1],
            "photo_id": np.arange(11),
        }
    )
    photos = M2Data(
        cell_ids=np.tile(np.arange(3), (11, 1)),
        cell_probs=np.full((11, 3), 0.2, np.float32),
        posted_at=table.posted_at.to_numpy(np.int64),
        labels=np.arange(11),
    )
    albums = build_albums(table, album_size=ALBUM)
    arrays = album_arrays(photos, albums)
    np.testing.assert_array_equal(arrays.mask.sum(axis=1), [3, 6, 2])
    np.testing.assert_array_equal(arrays.labels[0, :3], [1, 2, 0])  # posting-time order
    np.testing.assert_array_equal(arrays.labels[1], [10, 9, 8, 7, 6, 5])
    assert arrays.inputs["time"].shape == (3, ALBUM, 3)
    np.testing.assert_array_equal(arrays.inputs["time"][0, 3:], 0.0)  # zero padding
    np.testing.assert_array_equal(photo_values(arrays.labels, albums), np.arange(11))
    draw = training_draws(photos, albums, seed=0)
    assert draw(0).mask.shape[0] == 2  # one album per user
    np.testing.assert_array_equal(draw(3).labels, draw(3).labels)  # deterministic per epoch


def test_m3_starts_from_trained_m2_blocks():
    config, m2_config = small_config(dropout=0.5)
    keras.utils.set_random_seed(3)
    m2 = build_m2(NUM_CELLS, m2_config)
    from geoloc_tf.m2.model import transfer_weights

    m3 = build_m3(NUM_CELLS, config, m2_config)
    copied = transfer_weights(m2, m3)
    assert sorted(copied) == sorted(
        [f"m2_block{i}_{kind}" for i in (1, 2, 3) for kind in ("dense", "bn")] + ["m2_output"]
    )
    np.testing.assert_array_equal(
        m3.get_layer("m2_block2_dense").get_weights()[0], m2.get_layer("m2_block2_dense").get_weights()[0]
    )


def test_m3_started_from_m2_predicts_exactly_what_m2_predicts():
    """Residual output: M3 = M2 + the LSTM's correction; with the correction at zero, M3 = M2 on
    every real photo, and as initialized it is small (within 0.5 logits here)."""
    config, m2_config = small_config()
    keras.utils.set_random_seed(5)
    m2 = build_m2(NUM_CELLS, m2_config)
    from geoloc_tf.m2.model import transfer_weights

    m3 = build_m3(NUM_CELLS, config, m2_config)
    transfer_weights(m2, m3)
    inputs, _, mask = album_batch(np.random.default_rng(6))
    photos = {name: inputs[name][mask] for name in ("cell_ids", "cell_probs", "time")}
    m2_out = np.asarray(m2(photos, training=False))
    started = np.asarray(m3(inputs, training=False))[mask]
    assert np.abs(np.log(started) - np.log(m2_out)).max() < 0.5
    correction = m3.get_layer("m3_output")
    correction.set_weights([np.zeros_like(w) for w in correction.get_weights()])
    m3_out = np.asarray(m3(inputs, training=False))
    np.testing.assert_allclose(m3_out[mask], m2_out, rtol=1e-5, atol=1e-7)
    fresh = build_m3(
        NUM_CELLS,
        M3Config(album_size=ALBUM, lstm_units=4, init_from_m2=False, residual_output=False),
        m2_config,
    )
    assert "m2_output" not in transfer_weights(m2, fresh)  # the paper-literal variant: own softmax


def test_init_from_m2_needs_an_m2():
    from geoloc_tf.m3.train import train_m3

    config = M3Config(album_size=ALBUM)
    rng = np.random.default_rng(0)
    inputs, labels, mask = album_batch(rng)
    from geoloc_tf.m3.data import AlbumArrays

    val = AlbumArrays(inputs=inputs, labels=labels, mask=mask)
    with pytest.raises(errors.ModelConfigError, match="init_from_m2"):
        train_m3(lambda epoch: val, val, NUM_CELLS, config, M2Config(top_k=3, hidden_units=8), seed=0)


def test_m3_saves_and_loads(tmp_path):
    rng = np.random.default_rng(4)
    keras.utils.set_random_seed(0)
    model = build_m3(NUM_CELLS, *small_config(dropout=0.5))
    inputs, _, mask = album_batch(rng)
    path = tmp_path / "m3.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs))[mask], np.asarray(model(inputs))[mask], rtol=1e-5)


def test_album_evidence_saves_and_loads_and_needs_the_residual_output(tmp_path):
    rng = np.random.default_rng(2)
    model = build_m3(NUM_CELLS, *small_config(album_evidence=True))
    layer = model.get_layer("m3_album_evidence")
    assert float(layer.alpha.numpy()) == 1.0  # starts as the product of the two distributions
    layer.alpha.assign(2.5)
    inputs, _, mask = album_batch(rng)
    model.save(tmp_path / "m3.keras")
    loaded = keras.saving.load_model(tmp_path / "m3.keras")
    assert float(loaded.get_layer("m3_album_evidence").alpha.numpy()) == 2.5
    np.testing.assert_allclose(
        np.asarray(loaded(inputs))[mask], np.asarray(model(inputs))[mask], rtol=1e-5, atol=1e-7
    )
    with pytest.raises(SettingError, match="M3Config.album_evidence needs M3Config.residual_output"):
        M3Config(residual_output=False, album_evidence=True)


def test_frozen_m2_needs_m2s_weights_and_names_both_settings():
    with pytest.raises(SettingError) as raised:
        M3Config(freeze_m2=True, init_from_m2=False)
    assert raised.value.fields == ("freeze_m2", "init_from_m2")
    assert raised.value.render(lambda f: f"--m3_{f}").startswith("--m3_freeze_m2 needs --m3_init_from_m2")
