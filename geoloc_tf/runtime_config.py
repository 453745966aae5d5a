"""How a run executes: the devices (tf.distribute or keras.distribution), precision, XLA, tf.data's
autotuner, determinism.

None of these changes what a run computes beyond float rounding, so every field is declared with
``affects_outputs=False``: changing one never invalidates a finished stage. This module imports
neither TensorFlow nor Keras (``geoloc_tf.distribute`` turns ``strategy`` into a tf.distribute
strategy on the TensorFlow backend, a ``keras.distribution`` on JAX).
"""

from __future__ import annotations

import dataclasses

from mesh.settings import check_settings, setting

#: Every ``strategy`` ``geoloc_tf.distribute.make_strategy`` and ``jax_distribution`` know.
STRATEGIES: tuple[str, ...] = ("auto", "mirrored", "multi_worker", "one_device")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """How the run executes; changing these never invalidates finished stages."""

    strategy: str = setting(
        "auto",
        "How M1 trains and predicts across devices: a tf.distribute strategy on the TensorFlow "
        "backend, a keras.distribution (data parallel) on JAX. 'auto' (all GPUs when more than "
        "one, else one device), 'mirrored' (every local device), 'multi_worker' (TF_CONFIG on "
        "TensorFlow, KERAS_DISTRIBUTION_* on JAX), 'one_device'.",
        choices=STRATEGIES,
        affects_outputs=False,
    )
    mixed_precision: bool = setting(
        False, "Train with mixed_float16 (GPUs with tensor cores).", affects_outputs=False
    )
    jit_compile: bool = setting(
        False,
        "Compile M1's training step with XLA on the TensorFlow backend (JAX always does).",
        affects_outputs=False,
    )
    input_autotune: bool = setting(
        False,
        "tf.data's autotuner for M1's training input. Off: one map call per core (on a "
        "2-core host the autotuner now and then left a core idle for a whole pass; input_bench).",
        affects_outputs=False,
    )
    deterministic: bool = setting(
        True,
        "Same command, same --data_seed, same machine: the same tables, bit for bit. Seeds "
        "every random generator before each stage, turns on TensorFlow's op determinism "
        "(XLA's deterministic GPU kernels on JAX; experiments.determinism) and gives M1's input fixed seeds and element order. Off: "
        "faster kernels where TensorFlow has nondeterministic ones (GPUs mostly) and a faster "
        "input pipeline; two runs then differ by training noise.",
        affects_outputs=False,
    )

    def __post_init__(self):
        check_settings(self)
