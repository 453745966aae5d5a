"""M1's haversine label smoothing (PIGEON, Haas et al. 2024): the targets by hand, the loss against
them, and a tiny training run that feeds the step the photos' locations, on TensorFlow and JAX."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mesh.geodesy import EARTH_RADIUS_KM, great_circle_km
from tests.geoloc_tf import backend_runs
from tests.geoloc_tf import test_m1_trainer as trainer
from tests.geoloc_tf import test_m1_trainer_jax as trainer_jax

#: One degree of the equator with the project's radius: 111.226 km.
DEGREE_KM = EARTH_RADIUS_KM * math.pi / 180.0
#: Three label points on the equator, one degree apart.
CELL_LAT, CELL_LON = np.zeros(3), np.array([0.0, 1.0, 2.0])


def targets(lat, lon, cell_lat=CELL_LAT, cell_lon=CELL_LON, tau_km=DEGREE_KM) -> np.ndarray:
    from keras import ops

    from geoloc_tf.m1.targets import haversine_targets

    return ops.convert_to_numpy(
        haversine_targets(np.asarray(lat), np.asarray(lon), cell_lat, cell_lon, tau_km)
    )


def test_targets_fall_by_e_per_tau_of_distance_from_the_photo():
    # The photo on the first point: distances 0, 1, 2 tau -> 1 : e^-1 : e^-2.
    on_point = np.exp(-np.array([0.0, 1.0, 2.0]))
    # A quarter degree east: 0.25, 0.75, 1.75 tau, less the nearest 0.25 -> 1 : e^-0.5 : e^-1.5.
    between = np.exp(-np.array([0.0, 0.5, 1.5]))
    got = targets([0.0, 0.0], [0.0, 0.25])
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_allclose(got, [on_point / on_point.sum(), between / between.sum()], atol=1e-5)
    # Twice the temperature: half the exponent.
    half = np.exp(-np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(targets([0.0], [0.0], tau_km=2 * DEGREE_KM)[0], half / half.sum(), atol=1e-5)


def test_targets_are_mesh_geodesy_distances_and_rows_sum_to_one():
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-80, 80, 16), rng.uniform(-180, 180, 16)
    cell_lat, cell_lon = rng.uniform(-80, 80, 40), rng.uniform(-180, 180, 40)
    tau_km = 1500.0
    got = targets(lat, lon, cell_lat, cell_lon, tau_km)
    distance = great_circle_km(lat[:, None], lon[:, None], cell_lat[None], cell_lon[None])
    expected = np.exp(-(distance - distance.min(axis=1, keepdims=True)) / tau_km)
    np.testing.assert_allclose(got, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_a_tiny_temperature_is_a_one_hot_on_the_nearest_label_point():
    got = targets([0.0, 0.1, 0.0], [0.4, 1.6, 2.9], tau_km=1e-3)
    np.testing.assert_array_equal(got, np.eye(3, dtype=np.float32)[[0, 2, 2]])
    # Near the antipodes (178.5 to 179.5 degrees away): no row underflows to zeros.
    far = targets([0.0], [180.5], tau_km=1e-3)
    assert np.isfinite(far).all() and far[0].argmax() == 2 and far.sum() == pytest.approx(1.0)


def test_the_loss_is_the_cross_entropy_against_the_smoothed_targets():
    from keras import ops
    from keras.losses import sparse_categorical_crossentropy

    from geoloc_tf.m1.training import _loss

    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    cells = np.array([0, 2], np.int32)
    target = targets([0.0, 0.0], [0.0, 2.0])
    decay = np.float32(0.25)  # a model loss (the weight decay), added as it is
    by_hand = -(target * np.log(probabilities)).sum(axis=1).mean() + decay
    smoothed = float(ops.convert_to_numpy(_loss(cells, probabilities, [decay], target=target)))
    assert smoothed == pytest.approx(by_hand, rel=1e-5)
    one_hot = float(ops.convert_to_numpy(_loss(cells, probabilities, [decay])))
    plain = ops.convert_to_numpy(sparse_categorical_crossentropy(cells, probabilities)).mean() + decay
    assert one_hot == pytest.approx(plain, rel=1e-6)
    assert one_hot == pytest.approx(-np.log([0.7, 0.6]).mean() + decay, rel=1e-5)
    assert smoothed > one_hot + 0.1  # the smoothed target pays for the mass on the other cells


def test_off_by_default_and_the_input_carries_locations_only_when_on():
    from geoloc_tf.m1.config import M1Config
    from geoloc_tf.m1.training import _smoothing, training_input_config
    from geoloc_tf.runtime_config import RuntimeConfig
    from mesh.settings import SettingError

    assert M1Config().label_smoothing_km == 0.0
    assert _smoothing(M1Config(), mesh=None) is None
    assert not training_input_config(M1Config(), RuntimeConfig(), 0, False).with_location
    on = M1Config(label_smoothing_km=25.0)
    assert training_input_config(on, RuntimeConfig(), 0, True).with_location
    with pytest.raises(SettingError, match="M1Config.label_smoothing_km=-1.0: must be >= 0.0"):
        M1Config(label_smoothing_km=-1.0)


def spy_on_the_loss(training) -> list:
    """Replaces ``training._loss`` by one that notes the shapes of the cells and targets each
    traced step gives it (None: no targets), in the list it returns."""
    seen, loss = [], training._loss

    def spy(label, probabilities, model_losses, parent_maps=(), target=None):
        seen.append([list(label.shape), None if target is None else list(target.shape)])
        return loss(label, probabilities, model_losses, parent_maps, target)

    training._loss = spy
    return seen


def test_training_on_tensorflow_gives_the_step_the_smoothed_targets(tiny_world, tmp_path, monkeypatch):
    import mesh
    from data_pipelines.dataset import load
    from geoloc_tf.m1 import training

    monkeypatch.setattr(training, "_loss", training._loss)  # restored after the test
    seen = spy_on_the_loss(training)
    the_mesh = mesh.Mesh.load(tiny_world.mesh_path)
    config = trainer.configs(sgd_epochs=0, label_smoothing_km=500.0, sampler=dict(cycle_epochs=1))
    result = training.train_m1(
        load(tiny_world.data_root), the_mesh, tmp_path, tmp_path / "tb", config, seed=0
    )
    (epoch,) = result.history
    assert epoch["steps"] > 0 and np.isfinite(epoch["loss"]) and 0 <= epoch["accuracy"] <= 1
    batch = config.global_batch_size
    assert seen and all(shapes == [[batch], [batch, the_mesh.num_cells]] for shapes in seen)


def jax_training(world: str, out: str) -> dict:
    """One Adagrad epoch with smoothing on the JAX backend over two devices, augmented on the
    device (the batch's label dict laid out beside the packed crops), in ``backend_runs``'
    subprocess: the history, the number of cells and what the step gave the loss."""
    from pathlib import Path

    import mesh
    from data_pipelines.config import SamplerConfig
    from data_pipelines.dataset import load
    from geoloc_tf.m1 import training
    from geoloc_tf.m1.config import M1Config
    from geoloc_tf.runtime_config import RuntimeConfig
    from tests.geoloc_tf.test_m1_trainer_jax import MODEL, SAMPLER

    seen = spy_on_the_loss(training)
    model = dict(MODEL, sgd_epochs=0, label_smoothing_km=500.0, augment_on="device")
    the_mesh = mesh.Mesh.load(world + "/mesh.npz")
    result = training.train_m1(
        load(world + "/data"),
        the_mesh,
        Path(out),
        Path(out) / "tb",
        M1Config(**model, sampler=SamplerConfig(**SAMPLER)),
        RuntimeConfig(strategy="mirrored"),
        seed=0,
    )
    return {"history": result.history, "cells": the_mesh.num_cells, "seen": seen}


@pytest.mark.slow  # ~90 s on 2 CPU cores (XLA compiles the step); the TensorFlow run covers the loop
def test_training_on_jax_over_two_devices_gives_the_step_the_smoothed_targets(tiny_world, tmp_path):
    from pathlib import Path

    backend_runs.require_jax()
    world = str(Path(tiny_world.data_root).parent)
    code = (
        "from tests.geoloc_tf.test_m1_label_smoothing import jax_training\n"
        f"answer(jax_training({world!r}, {str(tmp_path / 'run')!r}))"
    )
    run = backend_runs.run_on_backend("jax", code, env=trainer_jax.TWO_DEVICES)
    (epoch,) = run["history"]
    assert epoch["augment_on"] == "device"
    assert epoch["steps"] > 0 and np.isfinite(epoch["loss"]) and 0 <= epoch["accuracy"] <= 1
    batch = trainer.MODEL["global_batch_size"]
    assert run["seen"] and all(shapes == [[batch], [batch, run["cells"]]] for shapes in run["seen"])
