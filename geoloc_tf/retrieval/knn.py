"""kNN geolocation from M1 features: a point estimate from the nearest photos' locations.

Beyond the paper. Vo, Jacobs and Hays (2017, "Revisiting IM2GPS in the deep learning era") find
that the features of a network trained to classify cells locate a photo well when used for
retrieval instead: take the k photos of a geotagged database nearest in feature space and put the
query where their locations are densest (kernel density estimation). Here the database is M1's
training split and the features are M1's own (appendix B), so "M1 kNN" is a second predictor from
the same network, evaluated next to M1 (Tables 6-7 style).

The estimate for one query with neighbour locations x_1..x_k (nearest in feature space first) is
the neighbour location with the highest density

    density(x_j) = sum_m w_m exp(-(d_gc(x_j, x_m) / bandwidth_km)^2 / 2)

a Gaussian kernel over the great-circle distance (``mesh.geodesy.great_circle_km``), summed over
all neighbours (x_j's own term is the same 1 * w_j for every candidate in the unweighted case, so
it does not change which neighbour wins). Choices, ours where the paper is silent:

- candidates are the neighbours' own locations, not a continuous maximum: a photo's location is a
  real place, and k candidates cost k x k distances per query (vectorized, in chunks of queries);
- ties (equal density, e.g. all neighbours farther apart than the bandwidth) go to the nearest
  neighbour in feature space, so a tiny bandwidth gives 1-NN and a huge one the neighbour most
  central to the others;
- ``weights`` (optional [q, k], e.g. from feature distances) scale each neighbour's kernel;
  unweighted by default. A neighbour with NaN latitude (fewer than k photos) is ignored.

``bandwidth_km`` and ``k`` are settings (``--evaluate_knn_bandwidth_km``, ``--evaluate_knn_k``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from geoloc_tf.errors import RetrievalError
from mesh.geodesy import great_circle_km

log = logging.getLogger(__name__)

#: Name of the kNN predictor's prediction tables, ``predictions/m1_knn/<split>.parquet``.
KNN_MODEL = "m1_knn"
#: Queries whose k x k distance matrices are computed at once (k = 50: 2048 x 2500 doubles).
QUERY_CHUNK = 2048


def kde_locations(neighbour_lat: np.ndarray, neighbour_lon: np.ndarray, bandwidth_km: float,
                  weights: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat [q], lon [q], density [q]) of each query's densest neighbour (module docstring).

    neighbour_lat/lon: [q, k] degrees, nearest in feature space first; NaN marks a missing
    neighbour. A query without any neighbour gets NaN.
    """
    lat = np.asarray(neighbour_lat, np.float64)
    lon = np.asarray(neighbour_lon, np.float64)
    if lat.ndim != 2 or lat.shape != lon.shape:
        raise RetrievalError(f"kde_locations: neighbour lat {lat.shape}, lon {lon.shape}; "
                             "expected equal [q, k] arrays")
    if not bandwidth_km > 0:
        raise RetrievalError(f"kde_locations: bandwidth_km={bandwidth_km}; expected > 0 km")
    valid = np.isfinite(lat) & np.isfinite(lon)
    w = np.ones_like(lat) if weights is None else np.asarray(weights, np.float64)
    if w.shape != lat.shape:
        raise RetrievalError(f"kde_locations: weights {w.shape}; expected {lat.shape}")
    w = np.where(valid, w, 0.0)
    q = len(lat)
    best = np.zeros(q, np.int64)
    density = np.full(q, np.nan)
    for start in range(0, q, QUERY_CHUNK):
        rows = slice(start, start + QUERY_CHUNK)
        a, b = lat[rows], lon[rows]
        d = great_circle_km(a[:, :, None], b[:, :, None], a[:, None, :], b[:, None, :])
        kernel = np.exp(-0.5 * (d / bandwidth_km) ** 2)
        dens = np.einsum("qjm,qm->qj", np.nan_to_num(kernel), w[rows])
        dens = np.where(valid[rows], dens, -np.inf)
        best[rows] = np.argmax(dens, axis=1)  # first maximum: nearest in feature space
        density[rows] = np.take_along_axis(dens, best[rows, None], axis=1)[:, 0]
    out_lat = np.take_along_axis(lat, best[:, None], axis=1)[:, 0]
    out_lon = np.take_along_axis(lon, best[:, None], axis=1)[:, 0]
    none = ~valid.any(axis=1)
    out_lat[none], out_lon[none], density[none] = np.nan, np.nan, np.nan
    return out_lat, out_lon, density


def knn_locations(index_features: np.ndarray, index_lat: np.ndarray, index_lon: np.ndarray,
                  queries: np.ndarray, k: int, bandwidth_km: float,
                  index_sq_norms: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kNN geolocation of feature ``queries`` [q, d] against an index: (lat, lon, density)."""
    from geoloc_tf.retrieval.search import nearest

    rows, _ = nearest(index_features, queries, k, index_sq_norms=index_sq_norms)
    index_lat, index_lon = np.asarray(index_lat, np.float64), np.asarray(index_lon, np.float64)
    return kde_locations(index_lat[rows], index_lon[rows], bandwidth_km)


def write_knn_predictions(predictions_dir: str | Path, split: str, k: int, bandwidth_km: float,
                          index_split: str = "m1_train", model: str = "m1") -> Path:
    """``predictions/m1_knn/<split>.parquet``: the kNN estimate of every photo of ``split`` from
    its M1 features' neighbours among ``index_split``'s (both from M1's prediction tables, which
    hold features when the predict stage ran with --predict_store_features). A point prediction
    table (``prediction_tables.table_from_points``)."""
    import pandas as pd

    from geoloc_tf import prediction_tables
    from geoloc_tf.retrieval.feature_index import read_features
    from geoloc_tf.run_layout import prediction_table_path

    index_path = prediction_table_path(predictions_dir, model, index_split)
    query_path = prediction_table_path(predictions_dir, model, split)
    index_features, queries = read_features(index_path), read_features(query_path)
    if len(index_features) == 0:
        raise RetrievalError(f"{index_path}: no photos to search; expected {index_split}'s "
                             "M1 features")
    if len(queries) and queries.shape[1] != index_features.shape[1]:
        raise RetrievalError(f"{query_path}: features of width {queries.shape[1]}, {index_path}: "
                             f"{index_features.shape[1]}; expected the same M1")
    index_meta = prediction_tables.read_frame(index_path, ["lat", "lon"])
    metadata = prediction_tables.read_frame(query_path, list(prediction_tables.METADATA_COLUMNS))
    lat, lon, density = (knn_locations(index_features, index_meta["lat"].to_numpy(),
                                       index_meta["lon"].to_numpy(), queries, k, bandwidth_km)
                         if len(queries) else (np.zeros(0), np.zeros(0), np.zeros(0)))
    frame = prediction_tables.table_from_points(metadata, lat, lon)
    frame["knn_density"] = density.astype(np.float32)
    path = prediction_table_path(predictions_dir, KNN_MODEL, split)
    prediction_tables.write_table(frame, path)
    log.info("kNN %s: %d photos, k=%d, bandwidth %g km, index %s (%d photos) -> %s", split,
             len(frame), k, bandwidth_km, index_split, len(index_features), path)
    return path
