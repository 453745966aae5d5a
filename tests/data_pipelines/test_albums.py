"""§3.3 albums: time order, 24 per album, zero padding + mask, one random album per user."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_pipelines import albums


def table():
    # user "a": 50 photos (albums of 24, 24, 2) given in reverse time order; user "b": 3 photos.
    rows = [("a", f"a{i:02d}", 1000 + i) for i in reversed(range(50))]
    rows += [("b", "b2", 30), ("b", "b0", 10), ("b", "b1", 20)]
    df = pd.DataFrame(rows, columns=["user_hash", "photo_id", "posted_at"])
    df["feature"] = [np.array([float(t), 1.0]) for t in df["posted_at"]]
    return df


def test_albums_are_time_ordered_runs_of_24_with_padding_and_mask():
    df = table()
    al = albums.build_albums(df)
    assert al.num_albums == 4  # a: 24 + 24 + 2, b: 3
    assert list(al.user) == ["a", "a", "a", "b"]
    ids = np.where(al.mask, df["photo_id"].to_numpy()[np.maximum(al.rows, 0)], "")
    assert list(ids[0]) == [f"a{i:02d}" for i in range(24)]
    assert list(ids[1]) == [f"a{i:02d}" for i in range(24, 48)]
    assert list(ids[2][:2]) == ["a48", "a49"] and not al.mask[2, 2:].any()
    assert list(ids[3][:3]) == ["b0", "b1", "b2"] and al.mask[3].sum() == 3
    # Every photo in exactly one album (evaluation).
    used = np.sort(al.rows[al.mask])
    assert np.array_equal(used, np.arange(len(df)))
    features = albums.gather(albums.stack_column(df, "feature"), al)
    assert features.shape == (4, 24, 2)
    assert features[3, 0].tolist() == [10.0, 1.0] and features[3, 3:].sum() == 0  # zero padding
    assert features[2, 1].tolist() == [1049.0, 1.0]


def test_training_takes_one_random_album_per_user_per_epoch():
    al = albums.build_albums(table())
    picks = [albums.training_albums(al, epoch) for epoch in range(60)]
    for p in picks:
        assert len(p) == 2 and p[0] in (0, 1, 2) and p[1] == 3
    assert {int(p[0]) for p in picks} == {0, 1, 2}
    assert np.array_equal(albums.training_albums(al, 5), albums.training_albums(al, 5))
    selected = albums.gather(np.arange(53), al, picks[0])
    assert selected.shape == (2, 24)
