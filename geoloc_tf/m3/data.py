"""Album arrays for M3: per-photo M2 inputs gathered into zero-padded, masked albums (§3.3).

The albums themselves (which photos, in what order) come from ``data_pipelines.albums``: per hashed
user, photos in posting-time order, cut into albums of 24; training draws one random album per user
per epoch, evaluation covers every photo once. This module only gathers M2's inputs into them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from data_pipelines import albums as album_lib
from geoloc_tf import errors
from geoloc_tf.m2.data import M2Data

#: Name of M3's album-mask input: True where a photo is, False where padded.
MASK = "mask"


@dataclasses.dataclass(frozen=True)
class AlbumArrays:
    """A batch of albums ready for M3.

    inputs: M2's per-photo inputs with an album axis, (albums, album_size, ...), plus "mask"
    labels: int64 (albums, album_size), the true cell, 0 where padded (ignored: weight 0)
    mask:   bool (albums, album_size), True where a photo is
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    mask: np.ndarray

    @property
    def sample_weight(self) -> np.ndarray:
        """The mask as loss weights: padded positions count for nothing."""
        return self.mask.astype(np.float32)


def _gather(
    per_photo: dict[str, np.ndarray],
    labels: np.ndarray | None,
    albums: album_lib.Albums,
    select: np.ndarray | None,
) -> AlbumArrays:
    mask = albums.mask if select is None else albums.mask[select]
    inputs = {name: album_lib.gather(values, albums, select) for name, values in per_photo.items()}
    inputs[MASK] = mask
    gathered = (
        np.zeros(mask.shape, np.int64)
        if labels is None
        else album_lib.gather(labels, albums, select).astype(np.int64)
    )
    return AlbumArrays(inputs=inputs, labels=gathered, mask=mask)


def album_arrays(
    photos: M2Data,
    albums: album_lib.Albums,
    select: np.ndarray | None = None,
    extra_inputs: tuple[str, ...] = (),
) -> AlbumArrays:
    """The albums of ``albums`` (all, or those in ``select``) as M3 arrays.

    ``albums`` must index the rows of ``photos`` (built on the same table, same row order).
    """
    if albums.rows.size and albums.rows.max() >= len(photos):
        raise errors.ModelConfigError(
            f"album_arrays: albums refer to row {albums.rows.max()}, photos has {len(photos)} rows"
        )
    return _gather(photos.model_inputs(extra_inputs), photos.labels, albums, select)


def training_draws(
    photos: M2Data, albums: album_lib.Albums, seed: int = 0, extra_inputs: tuple[str, ...] = ()
) -> Callable[[int], AlbumArrays]:
    """``draw(epoch)``: one uniformly random album per user for that epoch (§3.3), deterministic.

    The per-photo inputs (time features included) are computed once; each draw only gathers.
    """
    per_photo = photos.model_inputs(extra_inputs)

    def draw(epoch: int) -> AlbumArrays:
        select = album_lib.training_albums(albums, epoch, seed)
        return _gather(per_photo, photos.labels, albums, select)

    return draw


def photo_values(album_values: np.ndarray, albums: album_lib.Albums) -> np.ndarray:
    """(albums, album_size, ...) values for ALL albums of ``albums`` -> (photos, ...) in table order.

    The inverse of ``data_pipelines.albums.gather`` on the real positions: evaluation covers every
    photo exactly once.
    """
    if album_values.shape[:2] != albums.rows.shape:
        raise errors.ModelConfigError(
            f"photo_values: values {album_values.shape[:2]}, expected {albums.rows.shape}"
        )
    num_photos = int(albums.mask.sum())
    out = np.zeros((num_photos,) + album_values.shape[2:], album_values.dtype)
    out[albums.rows[albums.mask]] = album_values[albums.mask]
    return out
