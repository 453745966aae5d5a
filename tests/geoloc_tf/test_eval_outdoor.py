"""Outdoor-only filtering (§4.1.2, Table 4): through a column and through a tiny scene model.

The scene model is trained here on bright (outdoor) vs dark (indoor) 8x8 images, over three
classes mapped to indoor/outdoor by a tiny file in Places365's ``IO_places365.txt`` format.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation import model_predictions as predictions
from geoloc_tf.evaluation import outdoor, results
from mesh import build_mesh

# Class 0 a dark indoor scene, class 1 a bright outdoor scene, class 2 another indoor scene (never
# shown in training): outdoor probability = softmax mass of class 1.
IO_FILE = "/b/bedroom 1\n/b/beach 2\n/c/closet 1\n"


def test_column_filter_threshold_is_inclusive_and_unknown_is_not_outdoor():
    p = [0.2, 0.5, 0.9, -1.0, np.nan, 0.49999]
    np.testing.assert_array_equal(outdoor.outdoor_mask(p), [False, True, True, False, False, False])
    np.testing.assert_array_equal(outdoor.outdoor_mask(p, 0.2), [True, True, True, False, False, True])
    np.testing.assert_array_equal(outdoor.known_mask(p), [True, True, True, False, False, True])


def test_io_label_file_is_read_in_class_order_and_errors_say_where(tmp_path):
    path = tmp_path / "IO_places365.txt"
    path.write_text(IO_FILE)
    names, is_outdoor = outdoor.read_io_labels(path)
    assert names == ["/b/bedroom", "/b/beach", "/c/closet"]
    np.testing.assert_array_equal(is_outdoor, [False, True, False])
    path.write_text("/a/airfield 2\n/b/bedroom 3\n")
    with pytest.raises(EvaluationError, match=r"IO_places365.txt:2: '/b/bedroom 3'; expected"):
        outdoor.read_io_labels(path)


def test_probabilities_or_logits():
    probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(outdoor.to_probabilities(probs), probs)
    logits = np.array([[0.0, np.log(3.0)]])  # softmax = (1/4, 3/4)
    np.testing.assert_allclose(outdoor.to_probabilities(logits), [[0.25, 0.75]])


@pytest.fixture(scope="module")
def scene_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    dark = rng.uniform(0.0, 0.3, (32, 8, 8, 3)).astype(np.float32)
    bright = rng.uniform(0.7, 1.0, (32, 8, 8, 3)).astype(np.float32)
    x = np.concatenate([dark, bright])
    y = np.array([0] * 32 + [1] * 32)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=60, batch_size=64, verbose=0)
    root = tmp_path_factory.mktemp("scene")
    model.save(root / "scene.keras")
    (root / "IO_places365.txt").write_text(IO_FILE)
    return root, model


def test_tiny_scene_model_from_keras_file_and_savedmodel(scene_model):
    root, model = scene_model
    rng = np.random.default_rng(1)
    test = np.concatenate([rng.uniform(0.0, 0.3, (5, 8, 8, 3)), rng.uniform(0.7, 1.0, (5, 8, 8, 3))]).astype(
        np.float32
    )
    expected = np.asarray(model(test))[:, 1]  # mass of the only outdoor class
    p = outdoor.scene_outdoor_probs(str(root / "scene.keras"), test, root / "IO_places365.txt", batch_size=4)
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(outdoor.outdoor_mask(p), [False] * 5 + [True] * 5)  # bright = outdoor

    model.export(str(root / "scene_savedmodel"), verbose=False)
    p2 = outdoor.scene_outdoor_probs(root / "scene_savedmodel", test, root / "IO_places365.txt")
    np.testing.assert_allclose(p2, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(EvaluationError, match="3 classes but the indoor/outdoor mapping has 2"):
        outdoor.scene_outdoor_probs(model, test, np.array([False, True]))


def test_scene_model_probabilities_replace_the_column_in_table4_rows(scene_model):
    root, _ = scene_model
    rng = np.random.default_rng(2)
    n = 20
    images = np.concatenate(
        [rng.uniform(0.0, 0.3, (12, 8, 8, 3)), rng.uniform(0.7, 1.0, (8, 8, 8, 3))]
    ).astype(np.float32)
    photo_id = np.array([f"p{i}" for i in range(n)], dtype=object)
    p = outdoor.scene_outdoor_probs(root / "scene.keras", images, root / "IO_places365.txt")
    lat = rng.uniform(-60, 60, n)
    lon = rng.uniform(-170, 170, n)
    mesh = build_mesh(
        np.concatenate([lat, rng.uniform(-60, 60, 200)]),
        np.concatenate([lon, rng.uniform(-170, 170, 200)]),
        refinement_limit=60,
        min_examples=1,
        init_grid=4,
    )
    pred = predictions.ModelPredictions(
        "m1",
        photo_id,
        photo_id.copy(),
        np.zeros(n, np.int64),
        lat,
        lon,
        np.full(n, -1.0, np.float32),
        mesh.locate(lat, lon),
    )  # the true cell: every photo's error is its distance to the label point
    column = results.evaluate_predictions({"m1": pred}, mesh).results["models"]["m1"]["outdoor"]
    assert column["num_known"] == 0 and column["by_label_point"] is None  # all unknown in the column
    scene = results.evaluate_predictions({"m1": pred}, mesh, outdoor_probs=pd.Series(p, index=photo_id))
    o = scene.results["models"]["m1"]["outdoor"]
    assert o["probability_source"] == "scene model" and o["num_known"] == n
    assert o["num_outdoor"] == 8 and o["by_label_point"]["imagery"]["num_photos"] == 8
