"""M1's export: JPEG bytes in, top-k cells and lat/lon out, the same after reloading elsewhere."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from geoloc_tf import errors, preprocessing
from geoloc_tf.m1 import export
from geoloc_tf.m1.inception_v4 import build_inception_v4
from tests.geoloc_tf.conftest import TINY, jpeg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Imagery centroids of 7 cells, [lat, lon] degrees (Paris, New York, Tokyo, Sydney, ...).
CELLS = np.array(
    [
        [48.8566, 2.3522],
        [40.7128, -74.0060],
        [35.6762, 139.6503],
        [-33.8688, 151.2093],
        [-22.9068, -43.1729],
        [64.1466, -21.9426],
        [1.3521, 103.8198],
    ]
)


def gradient_model(num_cells: int = 7, seed: int = 3):
    """A tiny M1 whose logits depend on the image (moving statistics made non-trivial)."""
    keras.utils.set_random_seed(seed)
    model = build_inception_v4(dataclasses.replace(TINY, num_cells=num_cells))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.5, np.float32))
    return model


def test_saved_model_in_a_fresh_process_predicts_as_in_process(tmp_path):
    model = gradient_model()
    images = [jpeg(90, 120, 0), jpeg(75, 75, 1), jpeg(200, 100, 2)]
    serve = tf.function(export.make_serving_fn(model, CELLS, top_k=3))
    here = {k: v.numpy() for k, v in serve(tf.constant(images)).items()}

    # Outputs a person can check: probabilities sorted and consistent with the model on the
    # preprocessed pixels; lat/lon are the label points of the top-1 cells.
    assert here["cell_ids"].shape == (3, 3) and here["cell_ids"].dtype == np.int32
    assert np.all(np.diff(here["probabilities"], axis=1) <= 0)
    pixels = preprocessing.eval_batch(tf.constant(images), 75)
    probabilities = np.asarray(model(pixels, training=False))
    np.testing.assert_array_equal(here["cell_ids"][:, 0], probabilities.argmax(axis=1))
    np.testing.assert_allclose(here["probabilities"][:, 0], probabilities.max(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(here["lat"], CELLS[here["cell_ids"][:, 0], 0])
    np.testing.assert_array_equal(here["lon"], CELLS[here["cell_ids"][:, 0], 1])

    written = export.export_m1(
        model,
        CELLS,
        str(tmp_path / "export" / "m1"),
        top_k=3,
        keras_path=str(tmp_path / "m1.keras"),
    )
    assert os.path.exists(os.path.join(written.saved_model_dir, "saved_model.pb"))
    assert sorted(os.listdir(tmp_path / "export")) == ["m1"]  # No temporary left behind.
    np.save(tmp_path / "images.npy", np.array(images, dtype=object), allow_pickle=True)
    script = textwrap.dedent(f"""
      import json, numpy as np, tensorflow as tf
      images = np.load({str(tmp_path / "images.npy")!r}, allow_pickle=True).tolist()
      loaded = tf.saved_model.load({written.saved_model_dir!r})
      out = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
      direct = loaded.serve(tf.constant(images))
      assert np.array_equal(direct["cell_ids"].numpy(), out["cell_ids"].numpy())
      print(json.dumps({{k: v.numpy().tolist() for k, v in out.items()}}))
  """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    there = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(there["cell_ids"]), here["cell_ids"])
    np.testing.assert_allclose(np.array(there["probabilities"]), here["probabilities"], rtol=1e-5)
    np.testing.assert_array_equal(np.array(there["lat"]), here["lat"])
    np.testing.assert_array_equal(np.array(there["lon"]), here["lon"])

    reloaded = keras.saving.load_model(written.keras_path, compile=False)
    np.testing.assert_allclose(np.asarray(reloaded(pixels, training=False)), probabilities, rtol=1e-5)


def test_label_points_must_be_one_lat_lon_row_per_cell():
    model = build_inception_v4(TINY)
    with pytest.raises(errors.ExportError, match=r"\(7, 2\)"):
        export.make_serving_fn(model, CELLS[:6])
    with pytest.raises(errors.ExportError, match="row 1"):
        export.make_serving_fn(model, np.array([CELLS[0], [2.35, 248.8]] + list(CELLS[2:])))


def test_preprocessing_scales_to_minus_one_one_and_crops_the_centre():
    white, black = np.full((80, 80, 3), 255, np.uint8), np.zeros((80, 80, 3), np.uint8)
    for pixels, expected in ((white, 1.0), (black, -1.0)):
        image = preprocessing.eval_image(tf.io.encode_jpeg(pixels, quality=100), 75).numpy()
        assert image.shape == (75, 75, 3)
        np.testing.assert_allclose(image, expected, atol=1e-6)
    # A white 48 x 48 centre in an 8-px black frame (JPEG-block aligned): the 0.75 central crop
    # keeps exactly the centre, so the result is white; the default 0.875 keeps some frame.
    framed = np.zeros((64, 64, 3), np.uint8)
    framed[8:56, 8:56] = 255
    data = tf.io.encode_jpeg(framed, quality=100)
    assert preprocessing.eval_image(data, 32, central_fraction=0.75).numpy().min() > 0.95
    assert preprocessing.eval_image(data, 32).numpy().min() < -0.9
