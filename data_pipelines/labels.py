"""Labels per mesh: photo -> cell through ``mesh.Mesh.locate`` on the stored lat/lon.

One written data set serves every mesh (§3.1.1, Table 1: coarse, fine, fineP): labels are computed
from the metadata tables, never written into the image shards. ``locate`` returns -1 for photos in
cells the mesh dropped (fewer than "minimum examples"); those photos leave M1 training but stay in
evaluation, whose errors are distances (§3.1.3).

Because a table lists its split's photos in record order (shard, index in shard), the labels of a
shard are a plain array that ``input_pipeline`` zips with the shard's records: no lookup table,
no ``tf.numpy_function``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_pipelines.dataset import WrittenDataset

_CHUNK = 1 << 20  # photos per locate call: bounded memory at 14 M photos.


def locate_labels(mesh, lat, lon) -> np.ndarray:
    """``mesh.locate`` in chunks; returns int64 cell ids (-1: dropped cell)."""
    lat = np.asarray(lat, np.float64)
    lon = np.asarray(lon, np.float64)
    out = np.empty(lat.shape[0], np.int64)
    for start in range(0, lat.shape[0], _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = np.asarray(mesh.locate(lat[start:stop], lon[start:stop]), np.int64)
    return out


def table_labels(table: pd.DataFrame, mesh) -> np.ndarray:
    """Labels of the rows of a metadata table (columns ``lat``, ``lon``)."""
    return locate_labels(mesh, table["lat"].to_numpy(), table["lon"].to_numpy())


def class_counts(labels: np.ndarray, num_cells: int) -> np.ndarray:
    """Photos per cell (labels -1 are not counted); the sampler's ``count_c``."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=num_cells)[:num_cells]


def split_by_shard(values: np.ndarray, table: pd.DataFrame, num_shards: int) -> list[np.ndarray]:
    """Cuts a per-row array of a table (in record order) into one array per shard."""
    shard = table["shard"].to_numpy()
    if len(shard) and np.any(np.diff(shard) < 0):
        raise ValueError("table is not in record order (shard column decreases)")
    bounds = np.searchsorted(shard, np.arange(num_shards + 1))
    return [np.asarray(values[bounds[i] : bounds[i + 1]]) for i in range(num_shards)]


def shard_labels(data: WrittenDataset, split: str, mesh) -> list[np.ndarray]:
    """Per-shard int64 label arrays of ``split`` (aligned with ``data.shard_paths(split)``)."""
    table = data.table(split, columns=["lat", "lon", "shard", "index_in_shard"])
    labels = table_labels(table, mesh)
    return split_by_shard(labels, table, len(data.shard_paths(split)))
