"""Reproducible runs: a model's training is a function of its seed, whatever was drawn before it.

M2 and M3 seed themselves from their config (the runner also seeds every generator before each
stage: tests/experiments/test_determinism.py). Here two M2 fits with the same seed, with random numbers drawn from
every generator in between, give the same weights bit for bit, and another seed gives others.
"""

from __future__ import annotations

import random

import numpy as np
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
    config = M2Config(top_k=4, hidden_units=16, dropout=0.5, learning_rates=(0.01,),
                      boosting_rounds=1, batch_size=32, max_epochs=3, seed=seed)
    model, _ = train_m2(tiny_split(0), tiny_split(1), NUM_CELLS, config)
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
