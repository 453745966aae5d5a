"""Reproducible runs: the same command with the same seed on the same machine gives the same tables.

What varies between two runs of the same command, and what fixes it:

- Python's, NumPy's global and TensorFlow's global random generators (Keras' weight initializers
  and dropout, ``model.fit``'s shuffling, tf.data ops without an explicit seed):
  ``seed_everything(seed)`` seeds all three, and the runner calls it before every stage, so a
  stage draws the same numbers whether it runs in a fresh process (a resumed run) or after others.
- The order in which TensorFlow's kernels add floating-point numbers, and tf.data's parallel
  ``map``/``interleave``, which hand out elements as they finish: op determinism
  (``tf.config.experimental.enable_op_determinism``) makes both deterministic. M1's training input
  (``RuntimeConfig.deterministic``, the same setting) also fixes its
  per-epoch shuffle and augmentation seeds, as evaluation's input does, so a resumed epoch gets
  the same batches.
- Everything else that draws random numbers already takes an explicit seed (splits, the demo
  generator, the A.1 sampler, M3's albums, the mesh's build sample, Figure 1's photo per user),
  and the ingestion's worker processes write shards whose content does not depend on which
  finishes first. The demo's users are hashed with a salt fixed by the seed (they are simulated);
  a real data set's salt is random, made once per data set, so two data sets ingested from the
  same files hash users differently (user splits, M3's albums); a run on the same data set
  resumes with its salt.

On the JAX backend the same setting seeds Keras' generator (``set_random_seed``) and asks XLA for
deterministic GPU kernels (``--xla_gpu_deterministic_ops``, ``deterministic_xla``), which XLA
reads once, when JAX starts its backend: the runner sets it before anything lists a device. On a
CPU XLA's kernels are deterministic already; the GPU flag has not been tried on a GPU here.

Op determinism costs speed where a kernel has a faster nondeterministic form (on GPUs mostly);
``--runtime_deterministic`` (on by default) turns it off. It cannot be undone in a process, so
only the runner turns it on (``prepare_stage``, before every stage).
"""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int, tensorflow: bool = True) -> None:
    """Seeds Python's ``random``, NumPy's global generator and, with ``tensorflow``, TensorFlow's
    global seed (Keras' ``set_random_seed``: its weight initializers and dropout too)."""
    random.seed(int(seed))
    np.random.seed(int(seed))
    if tensorflow:
        import keras

        keras.utils.set_random_seed(int(seed))


XLA_DETERMINISM = "--xla_gpu_deterministic_ops=true"


def deterministic_xla() -> None:
    """Adds ``XLA_DETERMINISM`` to ``XLA_FLAGS`` (once) for the JAX backend's XLA; no effect
    after JAX has started its backend, so call it first thing (the runner does)."""
    import os

    flags = os.environ.get("XLA_FLAGS", "")
    if XLA_DETERMINISM not in flags.split():
        os.environ["XLA_FLAGS"] = f"{flags} {XLA_DETERMINISM}".strip()


def prepare_stage(seed: int, deterministic: bool = True, tensorflow: bool = True) -> None:
    """Seeds every generator; with ``deterministic``, also makes TensorFlow's ops and tf.data
    deterministic for the rest of the process (TensorFlow cannot turn it off again).
    ``tensorflow=False`` leaves TensorFlow unimported, for stages that never use it."""
    if deterministic and tensorflow:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    seed_everything(seed, tensorflow)
