"""The A.1 curriculum sampler: class frequencies ~ count**alpha, epoch size growth, schedule."""

from __future__ import annotations

import numpy as np
import pytest

from data_pipelines.config import SamplerConfig
from data_pipelines.sampler import CurriculumSampler


def shards_of(counts, num_shards=7, seed=0):
    """Labels of a split: counts[c] photos of class c, shuffled, cut into shards; plus -1 photos."""
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)] + [np.full(50, -1)])
    labels = np.random.default_rng(seed).permutation(labels)
    return np.array_split(labels, num_shards)


def test_epoch_size_starts_at_cells_times_200_and_grows_6_percent():
    s = CurriculumSampler(np.array([5, 0, 7, 1]), SamplerConfig(cycle_epochs=3), seed=0)
    assert s.epoch_size(0) == 4 * 200 == 800
    assert s.epoch_size(1) == 848  # 800 * 1.06
    assert s.epoch_size(2) == round(800 * 1.06**2) == 899
    assert [s.plan(e).alpha for e in (0, 2, 3, 5, 6, 11)] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.75]
    final = s.plan(12)
    assert final.natural and final.alpha == 1.0 and final.size == 13  # the full data set
    restart = CurriculumSampler(
        np.array([5, 7]), SamplerConfig(cycle_epochs=3, restart_growth_each_cycle=True), seed=0
    )
    assert restart.epoch_size(3) == restart.epoch_size(0) == 400


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_measured_class_frequencies_follow_count_power_alpha(alpha):
    counts = np.array([4000, 1000, 250, 40, 10, 0])
    shards = shards_of(counts)
    sampler = CurriculumSampler(
        counts, SamplerConfig(alpha_schedule=(alpha,), examples_per_cell=2000), seed=0
    )
    copies = sampler.copies(shards, epoch=0)
    drawn = np.zeros(len(counts))
    for cells, c in zip(shards, copies):
        assert np.all(c[cells < 0] == 0)  # photos of dropped cells are never drawn
        np.add.at(drawn, cells[cells >= 0], c[cells >= 0])
    size = 6 * 2000
    assert abs(drawn.sum() - size) < 0.02 * size
    expected = np.where(counts > 0, counts.astype(float) ** alpha, 0)
    expected = expected / expected.sum()
    measured = drawn / drawn.sum()
    # alpha = 0: each of the 5 non-empty classes ~ 20 %, even the one with 10 photos.
    np.testing.assert_allclose(measured, expected, atol=0.01, rtol=0.05)
    assert drawn[-1] == 0


def test_copies_are_deterministic_per_epoch_and_final_phase_is_every_photo_once():
    counts = np.array([300, 30, 3])
    shards = shards_of(counts)
    config = SamplerConfig(alpha_schedule=(0.0,), cycle_epochs=1)
    s = CurriculumSampler(counts, config, seed=0)
    a, b = s.copies(shards, 0), s.copies(shards, 0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    other_seed = CurriculumSampler(counts, config, seed=1).copies(shards, 0)
    assert not all(np.array_equal(x, y) for x, y in zip(a, other_seed))
    final = s.copies(shards, 1)
    for cells, c in zip(shards, final):
        assert np.array_equal(c, (cells >= 0).astype(np.int32))


def test_shard_fraction_reads_a_subset_and_keeps_class_frequencies():
    counts = np.array([20000, 5000, 2000])
    shards = shards_of(counts, num_shards=20)
    s = CurriculumSampler(counts, SamplerConfig(alpha_schedule=(0.0,), shard_fraction=0.25), seed=0)
    copies = s.copies(shards, 0)
    assert sum(int(c.sum() > 0) for c in copies) == 5
    drawn = np.zeros(3)
    for cells, c in zip(shards, copies):
        np.add.at(drawn, cells[cells >= 0], c[cells >= 0])
    np.testing.assert_allclose(drawn / drawn.sum(), [1 / 3] * 3, atol=0.02)
