"""Stable hash splits (appendix A): stability, disjointness, proportions, split by user."""

from __future__ import annotations

import numpy as np

from data_pipelines import hashing, splits
from data_pipelines.config import SplitConfig


def test_hash_is_stable_and_independent_of_the_other_keys():
    a = hashing.stable_hash64(["1", "22", "333"], "s")
    b = hashing.stable_hash64(np.array(["333", "x" * 40, "1"]), "s")
    assert a[0] == b[2] and a[2] == b[0]  # padding width of the array does not matter
    assert hashing.stable_hash64([7], "s")[0] == hashing.stable_hash64(["7"], "s")[0]
    assert hashing.stable_hash64(["1"], "s")[0] != hashing.stable_hash64(["1"], "t")[0]
    # Pinned value: a change of the hash would silently reshuffle every data set.
    assert int(hashing.stable_hash64(["1000"], "")[0]) == int(hashing.stable_hash64(["1000"])[0])


def test_splits_are_stable_when_data_is_added_and_disjoint():
    config = SplitConfig(seed=3)
    ids = np.array([str(i) for i in range(20000)])
    codes = splits.split_codes(ids, config)
    more = np.concatenate([ids, np.array([f"new{i}" for i in range(5000)])])
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(more))
    codes_more = splits.split_codes(more[shuffled], config)
    back = np.empty_like(codes_more)
    back[shuffled] = codes_more
    assert np.array_equal(back[:20000], codes)  # adding and reordering data moves nothing
    # Proportions: 12.2 / 14.9 = 81.9 % M1 train; 20 % of M1 validation is M2/M3 validation.
    frac = np.bincount(codes, minlength=3) / len(codes)
    assert abs(frac[0] - 12.2 / 14.9) < 0.01
    assert abs(frac[2] / (frac[1] + frac[2]) - 0.2) < 0.02
    # A different seed gives a different split.
    assert (splits.split_codes(ids, SplitConfig(seed=4)) != codes).mean() > 0.2


def test_split_by_user_keeps_each_user_on_one_side():
    users = np.array([f"u{i % 300}" for i in range(6000)])
    ids = np.arange(6000).astype(str)
    names = splits.assign_splits(ids, users, SplitConfig(split_by="user"))
    sides = {}
    for user, name in zip(users, names):
        sides.setdefault(user, set()).add(name)
    assert all(len(s) == 1 for s in sides.values())
    assert set(names) == set(splits.SPLITS)
    by_photo = splits.assign_splits(ids, users, SplitConfig(split_by="photo"))
    assert sum(len(set(by_photo[users == u])) > 1 for u in set(users)) > 250
