"""M1's prediction on the Keras JAX backend gives the TensorFlow backend's tables and features: on one
device and data parallel over two (``XLA_FLAGS=--xla_force_host_platform_device_count=2``,
``--runtime_strategy=mirrored``), with every batch padded to one shape and the padding dropped;
``geoloc index`` (``feature_index.build_index``) stores the same features.

The JAX side runs in a fresh interpreter (``backend_runs.run_on_backend``); the TensorFlow side is
this process, on the same run directory (``test_predict_records.run``'s tiny M1)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.geoloc_tf import backend_runs
from tests.geoloc_tf.test_predict_records import BATCH, SPLIT, predict, run  # noqa: F401  (fixture)

#: The same weights on two backends: float32 kernels of different libraries differ in the last bits.
TOLERANCE = 1e-5

JAX_SCRIPT = """
from pathlib import Path
from geoloc_tf.m1 import predict_records
from geoloc_tf.m1.predict_records import Replicas, placement
from tests.geoloc_tf.test_predict_records import predict
shapes = []  # the shape of every batch the compiled step was given
real = predict_records.jax_forward
def recording(*args):
    forward = real(*args)
    step = forward.step
    return predict_records.Forward(forward.replicas, lambda images: shapes.append(list(images.shape)) or step(images), forward.k)
predict_records.jax_forward = recording
result = {}
for name in ("one_device", "mirrored"):
    shapes.clear()
    replicas = Replicas.of(placement(name))
    paths = predict(Path(RUN), Path(OUT) / name, replicas)
    result[name] = {"devices": replicas.devices, "paths": paths, "shapes": sorted(set(map(tuple, shapes)))}
# geoloc index: M1's features of a split, on one device
from geoloc_tf.retrieval.config import IndexConfig
from geoloc_tf.retrieval.feature_index import build_index
index = build_index(RUN, IndexConfig(split=SPLIT, batch_size=BATCH), Path(OUT) / "index", placement("one_device"))
result["index"] = str(index.root)
# the second of two JAX processes: its own devices, every second shard
from geoloc_tf import distribute
distribute.jax_worker_share = lambda: (1, 2)
replicas = Replicas.of(placement("mirrored"))
result["worker_1_of_2"] = {"devices": replicas.devices, "shards": replicas.shards(5), "chief": replicas.chief}
answer(result)
"""


@pytest.fixture(scope="module")
def jax_run(run, tmp_path_factory):  # noqa: F811  (the fixture imported above)
    backend_runs.require_jax()
    out = tmp_path_factory.mktemp("predict_jax")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
        result = backend_runs.run_on_backend(
            "jax", f"RUN, OUT, SPLIT, BATCH = {str(run)!r}, {str(out)!r}, {SPLIT!r}, {BATCH}\n" + JAX_SCRIPT
        )
    return result


def assert_same_predictions(paths: dict[str, str], reference: dict[str, str]) -> None:
    from geoloc_tf.prediction_tables import read_frame
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    table, expected = read_frame(paths[SPLIT]), read_frame(reference[SPLIT])
    assert list(table["photo_id"]) == list(expected["photo_id"])  # record order kept
    expected_ids = np.stack(expected["top_ids"])
    assert len(np.unique(expected_ids[:, 0])) > 1  # the top cell depends on the photo
    np.testing.assert_array_equal(np.stack(table["top_ids"]), expected_ids)
    np.testing.assert_allclose(np.stack(table["top_probs"]), np.stack(expected["top_probs"]), atol=TOLERANCE)
    np.testing.assert_allclose(table["top10_mass"], expected["top10_mass"], atol=TOLERANCE)
    features = FeatureIndex.open(paths[f"{SPLIT}_features"]).features
    expected_features = FeatureIndex.open(reference[f"{SPLIT}_features"]).features
    np.testing.assert_allclose(features, expected_features, atol=TOLERANCE, rtol=TOLERANCE)


@pytest.fixture(scope="module")
def tf_paths(run, tmp_path_factory):  # noqa: F811
    return predict(run, tmp_path_factory.mktemp("predict_tf"))


def test_shards_end_in_a_short_batch(run):  # noqa: F811
    from data_pipelines.dataset import load

    lengths = load(str(run / "data")).shard_lengths(SPLIT)
    assert any(length % BATCH for length in lengths)  # what the padding below is for


@pytest.mark.parametrize("name, devices, padded", [("one_device", 1, BATCH), ("mirrored", 2, 8)])
def test_jax_predicts_the_tensorflow_tables(jax_run, tf_paths, name, devices, padded):
    result = jax_run[name]
    assert result["devices"] == devices
    # every batch, a shard's short last one too, reached the compiled step at one shape: the global
    # batch of 7, rounded up to 8 to split evenly over 2 devices
    assert result["shapes"] == [[padded, 75, 75, 3]]
    assert_same_predictions(result["paths"], tf_paths)


def test_a_jax_process_of_several_predicts_its_own_shards_on_its_own_devices(jax_run):
    assert jax_run["worker_1_of_2"] == {"devices": 2, "shards": [1, 3], "chief": False}


def test_the_index_command_on_jax_stores_the_tensorflow_features(jax_run, tf_paths):
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    index, expected = FeatureIndex.open(jax_run["index"]), FeatureIndex.open(tf_paths[f"{SPLIT}_features"])
    assert list(index.photos["photo_id"]) == list(expected.photos["photo_id"])
    np.testing.assert_allclose(index.features, expected.features, atol=TOLERANCE, rtol=TOLERANCE)
