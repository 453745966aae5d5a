"""Reproducible runs: a model's training is a function of its seed, whatever was drawn before it.

M2 and M3 seed themselves from their config (the runner also seeds every generator before each
stage: tests/experiments/test_determinism.py). Here two M2 fits with the same seed, with random numbers drawn from
every generator in between, give the same weights bit for bit, and another seed gives others.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from geoloc_tf.m2.config import M2Config
from geoloc_tf.m2.data import M2Data
from geoloc_tf.m2.train import train_m2

NUM_CELLS = 8


def tiny_split(seed: int, n: int = 160) -> M2Data:
    """M1-like top-k probabilities, posting times and true cells of `n` photos."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, NUM_CELLS, n)
    logits = rng.normal(0, 1, (n, NUM_CELLS))
    logits[np.arange(n), cells] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    posted_at = 1483228800 + rng.integers(0, 365 * 86400, n)
    return M2Data.from_dense(probs, posted_at, cells, k=4)


def fit_weights(seed: int) -> list[np.ndarray]:
    config = M2Config(
        top_k=4,
        hidden_units=16,
        dropout=0.5,
        learning_rates=(0.01,),
        boosting_rounds=1,
        batch_size=32,
        max_epochs=3,
    )
    model, _ = train_m2(tiny_split(0), tiny_split(1), NUM_CELLS, config, seed=seed)
    return model.get_weights()


def disturb_every_generator() -> None:
    """What other code of the same process may have drawn before a stage starts."""
    random.random()
    np.random.rand(7)
    tf.random.uniform([5])


def test_m2_fit_is_a_function_of_its_seed():
    first = fit_weights(seed=3)
    disturb_every_generator()
    again = fit_weights(seed=3)
    assert len(first) == len(again)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = fit_weights(seed=4)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


M1_SCRIPT = """
import json, sys
from pathlib import Path
import keras, numpy as np, tensorflow as tf
import mesh
from data_pipelines.config import SamplerConfig
from data_pipelines.dataset import load
from geoloc_tf.m1.config import M1Config
from geoloc_tf.m1.training import train_m1
from geoloc_tf.runtime_config import RuntimeConfig
tf.config.experimental.enable_op_determinism()  # what the runner's --runtime_deterministic does
config = M1Config(image_size=75, width_multiplier=0.05, blocks=(1, 1, 1), global_batch_size=8,
                  sgd_epochs=1, validation_photos=0, shuffle_buffer=64,
                  sampler=SamplerConfig(examples_per_cell=3, alpha_schedule=(0.0,)))
world = Path(sys.argv[1])
weights = []
for run in range(2):
    keras.utils.set_random_seed(0)  # the runner seeds every generator before the stage
    for _ in range(run + 1):  # what ran before differs between the two: TensorFlow's op seeds too
        tf.random.uniform([])
    out = Path(sys.argv[2]) / str(run)
    train_m1(load(str(world / "data")), mesh.Mesh.load(world / "mesh.npz"), out, out / "tb", config,
             RuntimeConfig(deterministic=True), seed=0)
    weights.append(keras.saving.load_model(out / "m1.keras").get_weights())
print("SAME", all(np.array_equal(a, b) for a, b in zip(*weights)))
"""


@pytest.mark.slow  # two trainings in a fresh process: about 2 minutes on 2 cores
def test_m1_training_is_a_function_of_its_seed(tiny_world, tmp_path):
    """Two tiny M1 trainings (A.1 cycle, then SGD) with op determinism and the same seed end with
    the same weights, bit for bit."""
    repo = Path(__file__).resolve().parents[2]
    script = tmp_path / "m1_twice.py"
    script.write_text(M1_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(Path(tiny_world.data_root).parent), str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SAME True" in result.stdout
