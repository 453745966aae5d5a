"""M1 over several partitions at once (PlaNet, CPlaNet; ``--mesh_partition_factors``): the combining
layer by hand, its m1.keras round trip, the summed loss by hand, and a tiny real training with two
extra partitions whose m1.keras still predicts the main mesh's cells."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

from geoloc_tf.layers import CombinePartitions
from geoloc_tf.m1 import inception_v4
from geoloc_tf.m1.partitions import COMBINE_LAYER, head_name, with_partition_heads
from tests.geoloc_tf import backend_runs
from tests.geoloc_tf.conftest import TINY

#: Main mesh of 4 cells, parents [0, 0, 1, 1] in a 2-cell coarse mesh: p_main = [.4, .1, .3, .2],
#: p_coarse = [.2, .8] -> scores [.08, .02, .24, .16] (sum .5) -> [.16, .04, .48, .32].
P_MAIN = np.array([[0.4, 0.1, 0.3, 0.2]], np.float32)
P_COARSE = np.array([[0.2, 0.8]], np.float32)
PARENTS = [0, 0, 1, 1]
COMBINED = [[0.16, 0.04, 0.48, 0.32]]


def test_combine_partitions_by_hand():
    out = np.asarray(CombinePartitions([PARENTS])([P_MAIN, P_COARSE]))
    np.testing.assert_allclose(out, COMBINED, atol=1e-6)
    # A second partition of 3 cells, parents [0, 1, 1, 2], p = [.5, .25, .25]: scores
    # [.08 x .5, .02 x .25, .24 x .25, .16 x .25] = [.04, .005, .06, .04] (sum .145).
    third = np.array([[0.5, 0.25, 0.25]], np.float32)
    out = np.asarray(CombinePartitions([PARENTS, [0, 1, 1, 2]])([P_MAIN, P_COARSE, third]))
    np.testing.assert_allclose(out, [[0.04 / 0.145, 0.005 / 0.145, 0.06 / 0.145, 0.04 / 0.145]], atol=1e-6)
    # A head whose softmax underflowed to 0 gives finite scores, rows summing to 1.
    out = np.asarray(CombinePartitions([PARENTS])([P_MAIN, np.array([[0.0, 1.0]], np.float32)]))
    assert np.isfinite(out).all() and abs(out.sum() - 1) < 1e-6 and out[0, :2].max() < 1e-30


def test_combine_partitions_refuses_a_parent_map_out_of_range():
    from geoloc_tf import errors

    with pytest.raises(errors.ModelConfigError, match="parent map names cell 2"):
        CombinePartitions([[0, 0, 1, 2]])([P_MAIN, P_COARSE])


def tiny_models(parent_maps, partition_cells):
    keras.utils.set_random_seed(0)
    model = inception_v4.build_inception_v4(TINY)
    return model, with_partition_heads(model, parent_maps, partition_cells)


MAIN_PARENTS = (np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 0, 0, 1, 1, 1, 1]))


def test_m1_keras_with_partitions_round_trips(tmp_path):
    from geoloc_tf.saving import load_keras, save_keras

    model, models = tiny_models(MAIN_PARENTS, [3, 2])
    assert [tuple(o.shape) for o in models.training.outputs] == [(None, 7), (None, 3), (None, 2)]
    assert models.inference.output_shape == (None, 7) and len(models.inference.outputs) == 1
    # Both models share every layer: the heads' weights are in both, the backbone's are the model's.
    assert {id(v) for v in models.inference.weights} == {id(v) for v in models.training.weights}
    assert {id(v) for v in model.weights} < {id(v) for v in models.training.weights}
    images = np.random.default_rng(0).uniform(-1, 1, (3, 75, 75, 3)).astype(np.float32)
    expected = models.inference.predict(images, verbose=0)
    main, coarse, coarser = models.training.predict(images, verbose=0)
    by_hand = main * coarse[:, MAIN_PARENTS[0]] * coarser[:, MAIN_PARENTS[1]]
    np.testing.assert_allclose(expected, by_hand / by_hand.sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(expected.sum(1), 1, rtol=1e-6)
    path = str(tmp_path / "m1.keras")
    save_keras(models.inference, path)
    loaded = load_keras(path)
    assert isinstance(loaded.get_layer(COMBINE_LAYER), CombinePartitions)
    assert loaded.get_layer(COMBINE_LAYER).parent_maps == [p.tolist() for p in MAIN_PARENTS]
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, rtol=1e-6)
    # The features of retrieval are the backbone's, with or without heads.
    assert inception_v4.features_model(loaded).output_shape == inception_v4.features_model(model).output_shape


def test_without_partitions_the_model_is_the_one_of_today():
    model, models = tiny_models((), ())
    assert models.training is model and models.inference is model and models.parent_maps == ()


def test_the_loss_sums_each_heads_cross_entropy_by_hand():
    from geoloc_tf.m1.training import _loss

    label = np.array([0, 3])
    main = np.array([[0.4, 0.1, 0.3, 0.2], [0.1, 0.1, 0.3, 0.5]], np.float32)
    coarse = np.array([[0.2, 0.8], [0.25, 0.75]], np.float32)
    alone = float(_loss(label, main, []))
    np.testing.assert_allclose(alone, -(np.log(0.4) + np.log(0.5)) / 2, rtol=1e-5)
    # Labels 0 and 3 have coarse cells 0 and 1: the head adds -(log .2 + log .75) / 2.
    both = float(_loss(label, [main, coarse], [], (np.array(PARENTS),)))
    np.testing.assert_allclose(both, alone - (np.log(0.2) + np.log(0.75)) / 2, rtol=1e-5)


@pytest.fixture(scope="module")
def partitioned_run(tiny_world, tmp_path_factory):
    """The tiny world's M1 (26 cells), one Adagrad epoch, with two coarser partitions: one on a
    3 x 3 start grid (12 cells, not nested in the main mesh), and the main mesh's settings times 2
    (``MeshConfig.partition``: 6 cells; the tiny world fills too few triangles to refine)."""
    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1 import training
    from mesh.build import build_from_config
    from mesh.config import MeshConfig
    from tests.geoloc_tf.test_m1_trainer import configs

    data = load(tiny_world.data_root)
    table = data.table("m1_train", columns=["lat", "lon"])
    lat, lon = table["lat"].to_numpy(), table["lon"].to_numpy()
    main = mesh.Mesh.load(tiny_world.mesh_path)
    partitions = [
        mesh.build_mesh(lat, lon, refinement_limit=400, min_examples=8, init_grid=3),
        build_from_config(
            lat, lon, MeshConfig(refinement_limit=40, min_examples=4, init_grid=4).partition(2)
        )[0],
    ]
    out = tmp_path_factory.mktemp("m1_partitions")
    config = configs(sgd_epochs=0, sampler={"cycle_epochs": 1})
    calls = []
    real_loss = training._loss

    def spy(label, outputs, model_losses, parent_maps=(), target=None):
        calls.append((len(outputs) if isinstance(outputs, (list, tuple)) else 1, len(parent_maps)))
        return real_loss(label, outputs, model_losses, parent_maps, target)

    training._loss = spy
    try:
        keras.utils.set_random_seed(0)
        result = training.train_m1(data, main, out, out / "tb", config, seed=0, partitions=partitions)
    finally:
        training._loss = real_loss
    return out, result, main, partitions, config, calls


def test_training_with_two_partitions_saves_one_distribution_over_the_main_cells(partitioned_run):
    from geoloc_tf.saving import load_keras

    out, result, main, partitions, _, calls = partitioned_run
    assert main.num_cells > partitions[0].num_cells > partitions[1].num_cells > 0
    # Every step's loss had the main head and both partition heads.
    assert calls and set(calls) == {(3, 2)}
    assert all(np.isfinite(h["loss"]) for h in result.history)
    model = load_keras(result.model_path)
    assert len(model.outputs) == 1 and model.output_shape == (None, main.num_cells)
    assert isinstance(model.get_layer(COMBINE_LAYER), CombinePartitions)
    for k, partition in enumerate(partitions, 1):
        assert model.get_layer(head_name(k)).units == partition.num_cells
    probabilities = model.predict(
        np.random.default_rng(1).uniform(-1, 1, (4, 75, 75, 3)).astype(np.float32), verbose=0
    )
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)


def test_a_killed_run_with_partitions_restores_its_heads_from_the_checkpoint(
    partitioned_run, tiny_world, tmp_path
):
    from data_pipelines.dataset import load
    from geoloc_tf.m1.training import train_m1
    from geoloc_tf.saving import load_keras

    out, expected, main, partitions, config, _ = partitioned_run
    rerun = tmp_path / "rerun"
    shutil.copytree(out / "checkpoints", rerun / "checkpoints")  # every epoch, no m1.keras
    shutil.copy(out / "history.json", rerun / "history.json")
    result = train_m1(
        load(tiny_world.data_root), main, rerun, rerun / "tb", config, seed=0, partitions=partitions
    )
    assert result.global_steps == expected.global_steps
    trained = load_keras(expected.model_path).get_weights()
    restored = load_keras(result.model_path).get_weights()
    assert len(restored) == len(trained)
    for saved, original in zip(restored, trained):
        np.testing.assert_array_equal(saved, original)


JAX_CODE = """
import numpy as np
from geoloc_tf.layers import CombinePartitions
from geoloc_tf.m1.training import _loss
main = np.array([[0.4, 0.1, 0.3, 0.2], [0.1, 0.1, 0.3, 0.5]], np.float32)
coarse = np.array([[0.2, 0.8], [0.25, 0.75]], np.float32)
answer({
    "combined": np.asarray(CombinePartitions([[0, 0, 1, 1]])([main[:1], coarse[:1]])).tolist(),
    "loss": float(_loss(np.array([0, 3]), [main, coarse], [], (np.array([0, 0, 1, 1]),))),
})
"""


def test_the_combining_layer_and_the_loss_on_jax():
    backend_runs.require_jax()
    got = backend_runs.run_on_backend("jax", JAX_CODE)
    np.testing.assert_allclose(got["combined"], COMBINED, atol=1e-6)
    np.testing.assert_allclose(
        got["loss"], -(np.log(0.4) + np.log(0.5) + np.log(0.2) + np.log(0.75)) / 2, rtol=1e-5
    )
