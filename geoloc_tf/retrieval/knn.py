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

``bandwidth_km``, ``k`` and the neighbour search's engine are settings (``--evaluate_knn_bandwidth_km``,
``--evaluate_knn_k``, ``--evaluate_knn_engine``: exact, or the FAISS index of ``retrieval.ann``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geoloc_tf.errors import RetrievalError
from mesh.geodesy import great_circle_km

if TYPE_CHECKING:
    from geoloc_tf.retrieval.feature_index import FeatureIndex
    from geoloc_tf.run_layout import RunLayout

log = logging.getLogger(__name__)

#: Name of the kNN predictor's prediction tables, ``predictions/m1_knn/<split>.parquet``.
KNN_MODEL = "m1_knn"
#: Queries whose k x k distance matrices are computed at once (k = 50: 2048 x 2500 doubles).
QUERY_CHUNK = 2048


def kde_locations(
    neighbour_lat: np.ndarray,
    neighbour_lon: np.ndarray,
    bandwidth_km: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lat [q], lon [q], density [q]) of each query's densest neighbour (module docstring).

    neighbour_lat/lon: [q, k] degrees, nearest in feature space first; NaN marks a missing
    neighbour. A query without any neighbour gets NaN.
    """
    lat = np.asarray(neighbour_lat, np.float64)
    lon = np.asarray(neighbour_lon, np.float64)
    if lat.ndim != 2 or lat.shape != lon.shape:
        raise RetrievalError(
            f"kde_locations: neighbour lat {lat.shape}, lon {lon.shape}; expected equal [q, k] arrays"
        )
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


def knn_locations(
    index: "FeatureIndex",
    queries: np.ndarray,
    k: int,
    bandwidth_km: float,
    engine: str = "exact",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kNN geolocation of feature ``queries`` [q, d] against a feature index: (lat, lon, density).
    ``engine``: how the neighbours are found (``FeatureIndex.search``); a neighbour not found
    (row -1) is missing (NaN)."""
    rows, _ = index.search(queries, k, engine)
    found = rows >= 0
    index_lat = index.photos["lat"].to_numpy(np.float64)
    index_lon = index.photos["lon"].to_numpy(np.float64)
    lat = np.where(found, index_lat[np.where(found, rows, 0)], np.nan)
    lon = np.where(found, index_lon[np.where(found, rows, 0)], np.nan)
    return kde_locations(lat, lon, bandwidth_km)


def write_knn_predictions(
    layout: "RunLayout",
    split: str,
    k: int,
    bandwidth_km: float,
    index_split: str = "m1_train",
    engine: str = "exact",
) -> Path:
    """``predictions/m1_knn/<split>.parquet``: the kNN estimate of every photo of ``split`` from
    its M1 features' neighbours among ``index_split``'s, both read from the run's feature indexes
    (``layout.index_dir``, written by the predict stage with --predict_store_features). A point
    prediction table (``prediction_tables.table_from_points``). ``engine``: exact, faiss or auto
    (``FeatureIndex.search``); the FAISS index is built in the index folder on first use."""
    from geoloc_tf import prediction_tables

    index, queries = open_index_and_queries(layout, index_split, split)
    metadata = prediction_tables.read_frame(
        layout.prediction_table("m1", split), list(prediction_tables.METADATA_COLUMNS)
    )
    if list(metadata["photo_id"]) != list(queries.photos["photo_id"]):
        raise RetrievalError(
            f"{queries.root}: photos differ from "
            f"{layout.prediction_table('m1', split)}; expected the features of the "
            "same predict stage (rerun it)"
        )
    lat, lon, density = (
        knn_locations(index, queries.features, k, bandwidth_km, engine)
        if len(queries)
        else (np.zeros(0), np.zeros(0), np.zeros(0))
    )
    frame = prediction_tables.table_from_points(metadata, lat, lon)
    frame["knn_density"] = density.astype(np.float32)
    path = prediction_tables.write_table(frame, layout.prediction_table(KNN_MODEL, split))
    log.info(
        "kNN %s: %d photos, k=%d, bandwidth %g km, engine %s, index %s (%d photos) -> %s",
        split,
        len(frame),
        k,
        bandwidth_km,
        engine,
        index_split,
        len(index),
        path,
    )
    return path


def open_index_and_queries(
    layout: "RunLayout", index_split: str, split: str
) -> tuple["FeatureIndex", "FeatureIndex"]:
    """The run's stored M1 features of ``index_split`` (the photos searched) and of ``split`` (the
    queries), checked: the index holds photos, and both come from one M1 (same width)."""
    index, queries = (_open_features(layout, s) for s in (index_split, split))
    if len(index) == 0:
        raise RetrievalError(f"{index.root}: no photos to search; expected {index_split}'s M1 features")
    if len(queries) and queries.dim != index.dim:
        raise RetrievalError(
            f"{queries.root}: features of width {queries.dim}, {index.root}: {index.dim}; expected the same M1"
        )
    return index, queries


def _open_features(layout: "RunLayout", split: str):
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    try:
        return FeatureIndex.open(layout.index_dir(split))
    except (RetrievalError, FileNotFoundError) as error:
        raise RetrievalError(
            f"M1's features of {split}: {error}; expected the predict stage's "
            "feature index (--predict_store_features)"
        ) from None
