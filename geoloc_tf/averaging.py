"""User averaging and album averaging of M1 probabilities: the controls of §3.3.

§3.3: "In album averaging, the images in an album are assigned a mesh cell based on the highest
average probability across all images" (PlaNet, Weyand et al. 2016), and "As a control, a similar
idea is applied to user images, in which, the location of an image is determined as the maximum
average probability across all images associated with the posting user." Both assume a group's
photos share one cell; neither is trained.

Both work on M1's stored sparse top-k predictions: a cell outside a photo's top k counts as
probability 0 for it. Averaging over a group of n photos divides every cell's sum by the same n,
so the best cell is the one with the largest SUM; we sum per (group, cell) with ``np.bincount``
and pick per group with one ``np.lexsort`` (no loop over photos). Ties go to the lowest cell id.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from data_pipelines.albums import Albums
from geoloc_tf import errors


def group_average_cells(
    group: ArrayLike, cell_ids: ArrayLike, cell_probs: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """For each photo, the cell of highest average probability over its group, and that average.

    group: (n,) any hashable labels (user hashes, album numbers); cell_ids/cell_probs: (n, k) M1's
    top-k (ids < 0 are missing entries). Returns (cell int64 (n,), mean probability float64 (n,));
    the cell is -1 for a group with no stored cell at all.
    """
    ids = np.asarray(cell_ids, dtype=np.int64)
    probs = np.asarray(cell_probs, dtype=np.float64)
    group = np.asarray(group)
    if ids.shape != probs.shape or ids.ndim != 2 or len(group) != len(ids):
        raise errors.ModelConfigError(
            f"group_average_cells: group {group.shape}, cell_ids {ids.shape}, cell_probs "
            f"{probs.shape}; expected (n,), (n, k), (n, k)"
        )
    n, k = ids.shape
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    _, group_code = np.unique(group, return_inverse=True)
    group_code = group_code.reshape(-1)
    num_groups = int(group_code.max()) + 1
    photos_per_group = np.bincount(group_code, minlength=num_groups)

    valid = (ids >= 0).ravel()
    pair_group = np.repeat(group_code, k)[valid]
    pair_cell = ids.ravel()[valid]
    pair_prob = probs.ravel()[valid]
    # One key per (group, cell) present; sum the probabilities of equal keys.
    stride = int(pair_cell.max()) + 1 if pair_cell.size else 1
    keys, key_index = np.unique(pair_group * stride + pair_cell, return_inverse=True)
    sums = np.bincount(key_index.reshape(-1), weights=pair_prob, minlength=len(keys))
    key_group, key_cell = keys // stride, keys % stride
    # Per group: largest sum first, then lowest cell id; take the first key of each group.
    order = np.lexsort((key_cell, -sums, key_group))
    first = order[np.r_[True, key_group[order][1:] != key_group[order][:-1]]]
    best_cell = np.full(num_groups, -1, np.int64)
    best_mean = np.zeros(num_groups, np.float64)
    best_cell[key_group[first]] = key_cell[first]
    best_mean[key_group[first]] = sums[first] / photos_per_group[key_group[first]]
    return best_cell[group_code], best_mean[group_code]


def user_average_cells(
    user: ArrayLike, cell_ids: ArrayLike, cell_probs: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """§3.3 user averaging: every photo gets its user's highest-average M1 cell in this split."""
    return group_average_cells(user, cell_ids, cell_probs)


def album_average_cells(
    albums: Albums, cell_ids: ArrayLike, cell_probs: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """PlaNet album averaging (§3.3) over the 24-photo albums of ``data_pipelines.albums``.

    ``albums`` indexes the rows of ``cell_ids``/``cell_probs`` and must place every row in exactly
    one album (``build_albums``); the result is per row, in table order.
    """
    ids = np.asarray(cell_ids)
    album_of_row = np.full(len(ids), -1, np.int64)
    album_of_row[albums.rows[albums.mask]] = np.nonzero(albums.mask)[0]
    if (album_of_row < 0).any():
        raise errors.ModelConfigError(
            f"album_average_cells: {(album_of_row < 0).sum()} of {len(ids)} rows are in no album; "
            "expected albums from build_albums over the same table"
        )
    return group_average_cells(album_of_row, ids, cell_probs)


def write_averaging_predictions(predictions_dir, split: str, album_size: int = 24) -> dict[str, str]:
    """User and album averaging of M1's stored predictions for `split`, written as prediction
    tables `user_averaging` and `album_averaging` (k = 1: the averaged cell and its mean
    probability), so the evaluation scores them like any model (Tables 6 and 7)."""
    from data_pipelines.albums import build_albums
    from geoloc_tf import prediction_tables
    from geoloc_tf.run_layout import prediction_table_path

    table, ids, probs = prediction_tables.read_table(prediction_table_path(predictions_dir, "m1", split))
    results = {
        "user_averaging": user_average_cells(table["user_hash"].to_numpy(), ids, probs),
        "album_averaging": album_average_cells(build_albums(table, album_size), ids, probs),
    }
    paths = {}
    for name, (cell, mean) in results.items():
        frame = prediction_tables.table_from_top_k(table, cell[:, None], mean[:, None], top10_mass=mean)
        paths[name] = str(
            prediction_tables.write_table(frame, prediction_table_path(predictions_dir, name, split))
        )
    return paths
