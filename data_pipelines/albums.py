"""User albums of §3.3 for M3, on tables of per-photo features (M1 outputs + metadata).

"All images from a user are grouped into albums of size 24. If there are not enough images to
fill an album then albums are 0 padded and masking is utilized. During training, a user was
limited to a single random album per epoch." Within a user, photos are "organized sequentially in
time", so albums are consecutive runs of 24 in posting-time order (ties broken by photo id).

Everything is vectorized (lexsort + group ranks); no loop over photos or users.
  ``build_albums``        every photo in exactly one album (evaluation)
  ``training_albums``     one random album per user for an epoch (training)
  ``gather``              per-photo arrays -> (albums, 24, ...) with zero padding
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from data_pipelines import errors

ALBUM_SIZE = 24  # §3.3, Table 6: "Albums are created using user-id and contain 24 images".


@dataclasses.dataclass(frozen=True)
class Albums:
    """Album layout over the rows of a table.

    rows:  int64 (num_albums, album_size), row index into the table, -1 for padding
    mask:  bool  (num_albums, album_size), True where a photo is
    user:  the user hash of each album
    first_album_of_user / albums_per_user: per user (in ``users`` order) where its albums start
    """

    rows: np.ndarray
    mask: np.ndarray
    user: np.ndarray
    users: np.ndarray
    first_album_of_user: np.ndarray
    albums_per_user: np.ndarray

    @property
    def num_albums(self) -> int:
        return int(self.rows.shape[0])


def build_albums(
    table: pd.DataFrame,
    album_size: int = ALBUM_SIZE,
    *,
    user_col="user_hash",
    time_col="posted_at",
    id_col="photo_id",
) -> Albums:
    """All albums: each user's photos in posting-time order, cut every ``album_size``."""
    for col in (user_col, time_col, id_col):
        if col not in table.columns:
            raise errors.DatasetError(
                f"album table: no column {col!r}; expected {user_col}, {time_col}, {id_col}"
            )
    n = len(table)
    user_codes, users = pd.factorize(table[user_col], sort=True)
    id_codes, _ = pd.factorize(table[id_col].astype(str), sort=True)
    order = np.lexsort((id_codes, table[time_col].to_numpy(np.int64), user_codes))
    sorted_users = user_codes[order]
    starts = (
        np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]]) if n else np.zeros(0, np.int64)
    )
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)  # position within the user
    albums_per_user = -(-counts // album_size)
    first_album = np.r_[0, np.cumsum(albums_per_user)[:-1]].astype(np.int64)
    album = np.repeat(first_album, counts) + rank // album_size
    num_albums = int(albums_per_user.sum())
    rows = np.full((num_albums, album_size), -1, np.int64)
    rows[album, rank % album_size] = order
    album_user_codes = np.repeat(np.arange(len(users)), albums_per_user)
    return Albums(
        rows=rows,
        mask=rows >= 0,
        user=np.asarray(users)[album_user_codes],
        users=np.asarray(users),
        first_album_of_user=first_album,
        albums_per_user=albums_per_user.astype(np.int64),
    )


def training_albums(albums: Albums, epoch: int, seed: int = 0) -> np.ndarray:
    """Indices of one uniformly random album per user for ``epoch`` (§3.3), deterministic."""
    rng = np.random.default_rng([seed, epoch])
    pick = np.floor(rng.random(len(albums.users)) * albums.albums_per_user).astype(np.int64)
    return albums.first_album_of_user + pick


def gather(values: np.ndarray, albums: Albums, select: np.ndarray | None = None) -> np.ndarray:
    """Per-row values (N, ...) -> (albums, album_size, ...), zeros where padded."""
    values = np.asarray(values)
    rows = albums.rows if select is None else albums.rows[select]
    padded = np.concatenate([values, np.zeros((1,) + values.shape[1:], values.dtype)])
    return padded[np.where(rows >= 0, rows, len(values))]


def stack_column(table: pd.DataFrame, column: str) -> np.ndarray:
    """A column whose cells are equal-length arrays (e.g. M1 top-10 probabilities) -> (N, D)."""
    return np.stack(table[column].to_numpy())
