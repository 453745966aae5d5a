"""The runner's seeding before every stage (experiments.determinism)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def test_prepare_stage_resets_python_numpy_and_tensorflow():
    import keras
    import tensorflow as tf

    from experiments.determinism import prepare_stage

    def draws():
        return (
            random.random(),
            float(np.random.rand()),
            float(tf.random.uniform([])),
            keras.initializers.GlorotUniform()((3, 3)).numpy().tolist(),
        )

    prepare_stage(11, deterministic=False)
    first = draws()
    random.random(), np.random.rand(7), tf.random.uniform([5])  # what earlier code may draw
    prepare_stage(11, deterministic=False)
    assert draws() == first
    prepare_stage(12, deterministic=False)
    assert draws() != first


def test_the_runner_prepares_the_mesh_stage_without_tensorflow():
    """Seeding before the mesh stage (NumPy alone) must not import TensorFlow."""
    code = (
        "import sys; from data_pipelines.config import IngestConfig; "
        "from experiments.config import RunConfig; from experiments.run import before_stage; "
        "before_stage(RunConfig(data=IngestConfig(source='demo')), 'mesh'); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]
