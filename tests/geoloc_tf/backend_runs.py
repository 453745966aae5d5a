"""Runs code on a chosen Keras backend in a fresh interpreter, and the tiny models it runs there.

Keras reads ``KERAS_BACKEND`` once, when it is imported, so one process has one backend: a test that
compares TensorFlow with JAX runs each side in its own process (``run_on_backend``), which answers
with one JSON line. ``train_and_save`` and ``load_and_predict`` are what those processes run: every
model of the package at toy size, on data made here from fixed seeds, so both backends see the same
numbers.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
#: Prefix of the line that carries a subprocess' answer (its other output is Keras' and XLA's logs).
ANSWER = "BACKEND-RUN-ANSWER "
#: Set to "required" (CI, .ci/run) to fail, not skip, the JAX tests when jax is missing.
REQUIRED_VARIABLE = "GEOLOC_JAX_TESTS"
#: XLA flag of the JAX runs (``run_on_backend``).
XLA_FAST_COMPILE = "--xla_backend_optimization_level=0"

MODELS = ("layers", "m1", "m2", "m3")


@functools.cache
def jax_compilation_cache() -> str:
    """A folder for JAX's persistent compilation cache, shared by this test session's JAX runs and
    removed at its end: runs that compile the same step (a killed run and its resumption, the same
    tiny M1 in several tests) compile it once."""
    folder = tempfile.mkdtemp(prefix="geoloc-jax-cache-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


NUM_CELLS, TOP_K, ALBUM = 12, 3, 6


def require_jax() -> None:
    """Skips the calling test without jax (``pip install -e ".[jax]"``), or fails where required."""
    if importlib.util.find_spec("jax") is not None:
        return
    message = 'jax is not installed; install the "jax" extra: pip install -e ".[jax]"'
    if os.environ.get(REQUIRED_VARIABLE) == "required":
        pytest.fail(f"{message}; {REQUIRED_VARIABLE}=required", pytrace=False)
    pytest.skip(message)


def start_on_backend(backend: str, code: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Starts ``code`` under ``KERAS_BACKEND=backend`` from the repository root, with ``env``
    added to this process' environment (``XLA_FLAGS`` there joins the run's own); its output is
    piped. ``code`` answers by calling ``answer(value)`` (defined for it) with a JSON-able value."""
    script = f"import json\ndef answer(value): print({ANSWER!r} + json.dumps(value), flush=True)\n" + code
    env = {
        **os.environ,
        **(env or {}),
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if backend == "jax":
        # Tiny models on a CPU: XLA's compile time is most of the run (M1 here: 60 s at the default
        # optimization level, 20 s without LLVM's optimizations); results differ in the last bits.
        env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS"), XLA_FAST_COMPILE]))
        env.setdefault("JAX_COMPILATION_CACHE_DIR", jax_compilation_cache())
        # Every compilation, not only those over a second: Keras compiles an initializer per weight
        # shape, each quick, together a good part of a tiny model's start.
        env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_on_backend(backend: str, code: str, timeout_s: float = 300, env: dict[str, str] | None = None) -> Any:
    """Runs ``code`` (``start_on_backend``) to its end; returns its one answer."""
    process = start_on_backend(backend, code, env)
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode != 0:
        raise AssertionError(f"KERAS_BACKEND={backend} run failed:\n{stderr[-4000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith(ANSWER)]
    if len(lines) != 1:
        raise AssertionError(f"KERAS_BACKEND={backend}: expected one answer line, got {stdout[-2000:]}")
    return json.loads(lines[0][len(ANSWER) :])


# ---- what the subprocesses run (keras is imported there, after KERAS_BACKEND is set) ----


def m1_config():
    """Inception-v4 at 75 px and 5 % width with one Inception-A block (7 x 7 grid, so its SAME
    average pool has borders whose padding must stay out of the mean on both backends). No B or C
    block: on JAX every distinct weight shape compiles its own initializer, about a second each."""
    from geoloc_tf.m1.inception_v4 import InceptionV4Config

    return InceptionV4Config(
        num_cells=7, image_size=75, width_multiplier=0.05, num_blocks_a=1, num_blocks_b=0, num_blocks_c=0
    )


def m1_data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16 images whose brightness is their class (0-6), with noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = np.arange(16) % 7
    level = (labels / 3.0 - 1.0)[:, None, None, None]
    images = np.clip(level + rng.normal(0.0, 0.1, (16, 75, 75, 3)), -1.0, 1.0).astype(np.float32)
    return images, labels


def photo_inputs(rng: np.random.Generator, lead: tuple[int, ...]) -> dict[str, np.ndarray]:
    """M2's top-k inputs for photos of shape ``lead``: M1's best TOP_K cells, best first."""
    probs = rng.dirichlet(np.ones(NUM_CELLS), lead).astype(np.float32)
    ids = np.argsort(-probs, axis=-1, kind="stable")[..., :TOP_K].astype(np.int32)
    return {
        "cell_ids": ids,
        "cell_probs": np.take_along_axis(probs, ids, -1),
        "time": rng.uniform(-0.5, 0.5, lead + (3,)).astype(np.float32),
    }


def m2_data(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """32 photos whose label is M1's best cell."""
    inputs = photo_inputs(np.random.default_rng(seed), (32,))
    return inputs, inputs["cell_ids"][:, 0].astype(np.int64)


def m3_data(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """8 albums of 1-6 real photos (zero-padded), labels M1's best cell; (inputs, labels, weights)."""
    rng = np.random.default_rng(seed)
    inputs = photo_inputs(rng, (8, ALBUM))
    mask = np.arange(ALBUM)[None, :] < rng.integers(1, ALBUM + 1, (8, 1))
    for name in ("cell_ids", "cell_probs", "time"):
        inputs[name][~mask] = 0
    inputs["mask"] = mask
    return inputs, np.where(mask, inputs["cell_ids"][..., 0], 0).astype(np.int64), mask.astype(np.float32)


def layers_data(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Inputs of ``layers_model``: stored top-k with a missing entry (-1), posting times, images."""
    rng = np.random.default_rng(seed)
    inputs = photo_inputs(rng, (32,))
    inputs["cell_ids"][0, -1] = -1
    inputs["posted_at"] = rng.integers(1_000_000_000, 2_000_000_000, 32).astype(np.int64)
    inputs["images"] = rng.uniform(-1.0, 1.0, (32, 4, 4, 3)).astype(np.float32)
    del inputs["time"]
    return inputs, inputs["cell_ids"][:, 0].clip(0).astype(np.int64)


def layers_model():
    """Every custom layer outside M1-M3's own graphs: DensifyTopK, operator (1), SparseLogPrior,
    PostingTimeFeatures and the ResNet backbone's InceptionToCaffe, feeding one softmax."""
    import keras

    from geoloc_tf.layers import DensifyTopK, PostingTimeFeatures, SparseLogPrior, TopKSparsifyNormalize
    from geoloc_tf.m1.backbones import InceptionToCaffe

    ids = keras.Input((TOP_K,), dtype="int32", name="cell_ids")
    probs = keras.Input((TOP_K,), name="cell_probs")
    posted_at = keras.Input((), dtype="int64", name="posted_at")
    images = keras.Input((4, 4, 3), name="images")
    sparse = TopKSparsifyNormalize(k=2, name="top_k")(DensifyTopK(NUM_CELLS, name="densify")([ids, probs]))
    caffe = keras.layers.Flatten()(InceptionToCaffe(name="caffe")(images))
    x = keras.layers.Concatenate()([sparse, PostingTimeFeatures(name="time")(posted_at), caffe / 100.0])
    logits = keras.layers.Add()([keras.layers.Dense(NUM_CELLS)(x), SparseLogPrior(k=2, name="prior")(sparse)])
    outputs = keras.layers.Activation("softmax")(logits)
    return keras.Model(
        {"cell_ids": ids, "cell_probs": probs, "posted_at": posted_at, "images": images}, outputs
    )


def build(name: str):
    from geoloc_tf.m1.inception_v4 import build_inception_v4
    from geoloc_tf.m2.config import M2Config
    from geoloc_tf.m2.model import build_m2
    from geoloc_tf.m3.config import M3Config
    from geoloc_tf.m3.model import build_m3

    if name == "layers":
        return layers_model()
    if name == "m1":
        return build_inception_v4(m1_config())
    if name == "m2":
        return build_m2(NUM_CELLS, M2Config(top_k=TOP_K, hidden_units=8, dropout=0.0))
    # M3 with M1's log top-k prior (SparseLogPrior) and the album evidence (AlbumEvidence).
    m3_config = M3Config(album_size=ALBUM, lstm_units=4, init_from_m2=False, album_evidence=True)
    return build_m3(NUM_CELLS, m3_config, M2Config(top_k=TOP_K, hidden_units=8, dropout=0.0, m1_prior=True))


def data(name: str) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """(inputs, labels, sample weights) of model ``name``, the same on every backend."""
    if name == "m1":
        return (*m1_data(1), None)
    if name == "m2":
        return (*m2_data(2), None)
    if name == "m3":
        return m3_data(3)
    return (*layers_data(4), None)


def train_and_save(out_dir: str) -> dict[str, Any]:
    """Builds and trains every model a few steps on this backend, saves ``<name>.keras`` and the
    predictions ``<name>.npy`` in ``out_dir``; answers losses, shapes, seconds, operator (1) on
    tied values and whether TensorFlow was imported by then (before saving, see ``block_tensorflow``).
    """
    import keras

    from geoloc_tf.layers import TopKSparsifyNormalize

    keras.utils.set_random_seed(0)
    report: dict[str, Any] = {"backend": keras.backend.backend(), "models": {}}
    trained = {}
    for name in MODELS:
        started = time.perf_counter()
        model = build(name)
        inputs, labels, weights = data(name)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        history = model.fit(inputs, labels, sample_weight=weights, batch_size=8, epochs=4, verbose=0)
        predictions = model.predict(inputs, batch_size=8, verbose=0)
        np.save(Path(out_dir) / f"{name}.npy", predictions)
        trained[name] = model
        report["models"][name] = {
            "loss": history.history["loss"],
            "shape": list(predictions.shape),
            "seconds": round(time.perf_counter() - started, 1),
        }
    # operator (1)'s tie rule: 0.3 at cell 4, then a three-way tie at 0.2 that cell 1 must win.
    ties = np.array([[0.1, 0.2, 0.2, 0.2, 0.3]], np.float32)
    report["ties"] = np.asarray(TopKSparsifyNormalize(k=2)(ties)).tolist()
    report["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    for name, model in trained.items():
        model.save(Path(out_dir) / f"{name}.keras")
    return report


def block_tensorflow() -> None:
    """Makes ``import tensorflow`` fail from here on, as on a machine without it.

    Keras' own saving code imports TensorFlow when it is installed, whatever the backend (to
    recognize ``tf.TensorShape``), and goes without it when the import fails; blocking it shows that
    the models train, save and load on JAX with no TensorFlow at all.
    """
    if "tensorflow" in sys.modules:
        raise AssertionError("tensorflow is already imported; block it before anything imports it")
    sys.modules["tensorflow"] = None  # type: ignore[assignment]


def load_and_predict(model_dir: str, out_dir: str) -> dict[str, Any]:
    """Loads every ``<name>.keras`` of ``model_dir`` on this backend, saves its predictions of the
    same inputs as ``<name>.npy`` in ``out_dir``."""
    import keras

    import geoloc_tf.layers  # noqa: F401  (registers the custom layers for loading)
    import geoloc_tf.m1.backbones  # noqa: F401

    started = time.perf_counter()
    for name in MODELS:
        model = keras.models.load_model(Path(model_dir) / f"{name}.keras")
        inputs, _, _ = data(name)
        np.save(Path(out_dir) / f"{name}.npy", model.predict(inputs, batch_size=8, verbose=0))
    return {"backend": keras.backend.backend(), "seconds": round(time.perf_counter() - started, 1)}
