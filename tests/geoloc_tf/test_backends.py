"""Every model on TensorFlow and on JAX: trains, and a .keras file saved on one loads on the other.

Three fresh interpreters (``backend_runs.run_on_backend``): TensorFlow trains every model a few steps
and saves it; JAX does the same and loads TensorFlow's files; TensorFlow loads JAX's files. Each
saves its predictions of the same fixed inputs, compared here. The models are M1 (a tiny
Inception-v4), M2, M3 (with M1's prior and the album evidence) and a model of the remaining custom
layers (``backend_runs.layers_model``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.geoloc_tf import backend_runs

#: Softmax outputs of the same weights on two backends: float32 kernels of different libraries
#: (oneDNN / Eigen under TF, XLA under JAX) differ in the last bits, far below this.
CROSS_BACKEND_ATOL = 1e-5

#: (batch, ...) of each model's predictions on its inputs (``backend_runs.data``).
SHAPES = {
    "layers": [32, backend_runs.NUM_CELLS],
    "m1": [16, 7],
    "m2": [32, backend_runs.NUM_CELLS],
    "m3": [8, backend_runs.ALBUM, backend_runs.NUM_CELLS],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    backend_runs.require_jax()
    root = tmp_path_factory.mktemp("backends")
    dirs = {name: root / name for name in ("tensorflow", "jax", "jax_from_tf", "tf_from_jax")}
    for path in dirs.values():
        path.mkdir()
    module = "from tests.geoloc_tf.backend_runs import block_tensorflow, load_and_predict, train_and_save\n"
    tf_run = backend_runs.run_on_backend(
        "tensorflow", module + f"answer(train_and_save({str(dirs['tensorflow'])!r}))"
    )
    # The package's own check that TensorFlow is installed runs first; after it no import of
    # TensorFlow succeeds, as on a machine with JAX and without TensorFlow.
    jax_run = backend_runs.run_on_backend(
        "jax",
        module + "import geoloc_tf\nblock_tensorflow()\n"
        f"trained = train_and_save({str(dirs['jax'])!r})\n"
        f"loaded = load_and_predict({str(dirs['tensorflow'])!r}, {str(dirs['jax_from_tf'])!r})\n"
        "answer({**trained, 'load_seconds': loaded['seconds']})",
    )
    tf_load = backend_runs.run_on_backend(
        "tensorflow", module + f"answer(load_and_predict({str(dirs['jax'])!r}, {str(dirs['tf_from_jax'])!r}))"
    )
    for backend, run in (("tensorflow", tf_run), ("jax", jax_run)):  # shown with pytest -s
        print(
            backend,
            {name: model["seconds"] for name, model in run["models"].items()},
            run.get("load_seconds"),
        )
    return {"tensorflow": tf_run, "jax": jax_run, "tf_load": tf_load, "dirs": dirs}


def predictions(directory: Path, name: str) -> np.ndarray:
    return np.load(directory / f"{name}.npy")


def test_each_backend_is_the_one_asked_for(runs):
    assert runs["tensorflow"]["backend"] == "tensorflow" and runs["tf_load"]["backend"] == "tensorflow"
    assert runs["jax"]["backend"] == "jax"


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
@pytest.mark.parametrize("name", backend_runs.MODELS)
def test_model_trains_with_falling_loss_and_predicts_distributions(runs, backend, name):
    result = runs[backend]["models"][name]
    assert result["shape"] == SHAPES[name]
    loss = result["loss"]
    assert len(loss) == 4 and all(np.isfinite(loss))
    assert loss[-1] < loss[0], f"{backend} {name}: loss went {loss}"
    probs = predictions(runs["dirs"][backend], name)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", backend_runs.MODELS)
def test_saved_on_tensorflow_predicts_the_same_on_jax(runs, name):
    dirs = runs["dirs"]
    np.testing.assert_allclose(
        predictions(dirs["jax_from_tf"], name), predictions(dirs["tensorflow"], name), atol=CROSS_BACKEND_ATOL
    )


@pytest.mark.parametrize("name", backend_runs.MODELS)
def test_saved_on_jax_predicts_the_same_on_tensorflow(runs, name):
    dirs = runs["dirs"]
    np.testing.assert_allclose(
        predictions(dirs["tf_from_jax"], name), predictions(dirs["jax"], name), atol=CROSS_BACKEND_ATOL
    )


def test_jax_runs_without_importing_tensorflow(runs):
    # The JAX run blocks TensorFlow's import (backend_runs.block_tensorflow) and still builds,
    # trains, saves and loads every model; none of the package's modules asked for it either.
    assert runs["jax"]["tensorflow_imported"] is False
    assert runs["tensorflow"]["tensorflow_imported"] is True  # the check can see an import


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_top_k_ties_keep_the_lowest_cell_on_both_backends(runs, backend):
    # [0.1, 0.2, 0.2, 0.2, 0.3], k=2: 0.3 at cell 4, then cell 1 of the three 0.2s; |p0| = 0.5.
    np.testing.assert_allclose(runs[backend]["ties"], [[0, 0.4, 0, 0, 0.6, 0.5]], rtol=1e-6)
