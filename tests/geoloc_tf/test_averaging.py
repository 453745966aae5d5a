"""User and album averaging (§3.3 controls) on hand examples."""

import numpy as np
import pandas as pd

from data_pipelines.albums import build_albums
from geoloc_tf.averaging import album_average_cells, group_average_cells, user_average_cells


def test_user_average_by_hand():
    # User "u": photo 0 says cell 5 (0.6) or 2 (0.4); photo 1 says 2 (0.5) or 7 (0.3);
    # photo 2 says 5 (0.2) or 7 (0.1). Averages: cell 2 = 0.9/3, cell 5 = 0.8/3, cell 7 = 0.4/3.
    # User "v" (one photo) keeps its own best cell 9.
    user = np.array(["u", "v", "u", "u"])
    ids = np.array([[5, 2], [9, 1], [2, 7], [5, 7]])
    probs = np.array([[0.6, 0.4], [0.7, 0.2], [0.5, 0.3], [0.2, 0.1]])
    cells, means = user_average_cells(user, ids, probs)
    np.testing.assert_array_equal(cells, [2, 9, 2, 2])
    np.testing.assert_allclose(means, [0.3, 0.7, 0.3, 0.3])


def test_ties_go_to_lowest_cell_and_missing_entries_are_ignored():
    cells, _ = group_average_cells([0, 0], [[4, 3], [3, 4]], [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_array_equal(cells, [3, 3])
    cells, means = group_average_cells([1, 1], [[6, -1], [-1, -1]], [[0.2, 0.9], [0.9, 0.9]])
    np.testing.assert_array_equal(cells, [6, 6])
    np.testing.assert_allclose(means, [0.1, 0.1])


def test_album_average_over_24_photo_albums():
    # One user with 26 photos: album 0 = first 24 in time order, album 1 = the last 2.
    n = 26
    table = pd.DataFrame({"user_hash": ["u"] * n, "posted_at": np.arange(n)[::-1], "photo_id": np.arange(n)})
    albums = build_albums(table)
    # Rows 0 and 1 are the two latest photos (album 1): they vote for cell 8; all others cell 3.
    ids = np.where(np.arange(n)[:, None] < 2, [[8, 3]], [[3, 8]])
    probs = np.tile([[0.6, 0.4]], (n, 1))
    cells, _ = album_average_cells(albums, ids, probs)
    np.testing.assert_array_equal(cells, [8, 8] + [3] * 24)
    user_cells, _ = user_average_cells(table.user_hash, ids, probs)
    np.testing.assert_array_equal(user_cells, [3] * n)
