"""Stable hash splits of appendix A.

"Images were divided at random into training and validation sets of 12.2M and 2.7M images ...
Validation data used for M1 was further sub-divided at random into training and validation sets
for training time-based models (M2 and M3), so that no data used to train M1 was used to also
train M2 and M3."

Three disjoint splits are written; M1 validation is the union of the last two:
  ``m1_train``     trains M1
  ``m23_train``    M1 validation, and trains M2/M3 (from M1's predictions)
  ``m23_val``      M1 validation, and validates M2/M3
A split is a pure function of (key, seed): reruns, re-sharding and added data never move a photo.
"""

from __future__ import annotations

import numpy as np

from data_pipelines import hashing
from data_pipelines.config import SplitConfig

M1_TRAIN = "m1_train"
M23_TRAIN = "m23_train"
M23_VAL = "m23_val"
SPLITS = (M1_TRAIN, M23_TRAIN, M23_VAL)
# M1 validation as a tfds split expression and as a tuple.
M1_VAL = f"{M23_TRAIN}+{M23_VAL}"
M1_VAL_SPLITS = (M23_TRAIN, M23_VAL)


def split_keys(photo_ids, user_hashes, config: SplitConfig):
    """What a photo's split is decided on: its user's hash when ``split_by="user"``, else its id."""
    return user_hashes if config.split_by == "user" else photo_ids


def split_codes(keys, config: SplitConfig) -> np.ndarray:
    """Returns int8 codes: 0 = m1_train, 1 = m23_train, 2 = m23_val (index into ``SPLITS``).

    ``keys`` come from ``split_keys``; the two hashes are independent (different salts), so the
    second split is random within M1 validation.
    """
    keys = np.asarray(keys)
    u1 = hashing.stable_unit(keys, f"m1-split/{config.seed}")
    u2 = hashing.stable_unit(keys, f"m23-split/{config.seed}")
    codes = np.where(u1 < config.m1_train_fraction, 0, np.where(u2 < config.m23_val_fraction, 2, 1))
    return codes.astype(np.int8)


def assign_splits(photo_ids, user_hashes, config: SplitConfig) -> np.ndarray:
    """Split names (``SPLITS``) for each photo."""
    keys = split_keys(photo_ids, user_hashes, config)
    return np.asarray(SPLITS, dtype=object)[split_codes(keys, config)]
