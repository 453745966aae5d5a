"""kNN geolocation (Vo et al. 2017) on hand-made neighbours: the densest neighbour location wins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geoloc_tf import prediction_tables
from geoloc_tf.errors import RetrievalError
from geoloc_tf.retrieval.knn import KNN_MODEL, kde_locations, knn_locations, write_knn_predictions
from geoloc_tf.run_layout import RunLayout
from mesh.geodesy import great_circle_km

PARIS = (48.85, 2.35)
SYDNEY = (-33.87, 151.21)
KM_IN_LAT_DEG = 180.0 / (np.pi * 6372.795)  # one km north, in degrees of latitude


def test_three_in_paris_beat_two_in_sydney_even_when_sydney_is_nearest():
    # Feature order: the two Sydney photos are the nearest in feature space.
    lat = [[SYDNEY[0], SYDNEY[0] + 0.01, PARIS[0], PARIS[0] + KM_IN_LAT_DEG, PARIS[0] - KM_IN_LAT_DEG]]
    lon = [[SYDNEY[1], SYDNEY[1], PARIS[1], PARIS[1], PARIS[1]]]
    out_lat, out_lon, density = kde_locations(np.array(lat), np.array(lon), bandwidth_km=25.0)
    # The central Paris photo (1 km from both others) beats the outer ones (1 and 2 km).
    assert (out_lat[0], out_lon[0]) == PARIS
    expected = 1 + 2 * np.exp(-0.5 * (1 / 25.0) ** 2)  # itself + two neighbours 1 km away
    assert density[0] == pytest.approx(expected, rel=1e-6)


def test_one_neighbour_gives_its_own_location():
    out_lat, out_lon, density = kde_locations(np.array([[10.5]]), np.array([[-20.25]]), 100.0)
    assert (out_lat[0], out_lon[0], density[0]) == (10.5, -20.25, 1.0)


def test_tiny_bandwidth_is_1nn_and_huge_bandwidth_is_the_most_central():
    # Three places on the equator, 10 degrees apart, nearest in feature space first: lon 0, 10, 20.
    lat, lon = np.zeros((1, 3)), np.array([[20.0, 0.0, 10.0]])
    assert kde_locations(lat, lon, bandwidth_km=1e-3)[1][0] == 20.0  # no overlap: the nearest
    assert kde_locations(lat, lon, bandwidth_km=1e5)[1][0] == 10.0  # the middle one


def test_vectorized_over_queries_with_missing_neighbours_and_weights():
    lat = np.array(
        [
            [SYDNEY[0], PARIS[0], PARIS[0]],
            [np.nan, np.nan, np.nan],  # no neighbour at all
            [SYDNEY[0], PARIS[0], np.nan],
        ]
    )  # one missing: the 2 left tie -> the nearest
    lon = np.array([[SYDNEY[1], PARIS[1], PARIS[1]], [np.nan] * 3, [SYDNEY[1], PARIS[1], np.nan]])
    out_lat, out_lon, density = kde_locations(lat, lon, 50.0)
    assert out_lat[0] == PARIS[0] and density[0] == pytest.approx(2.0)
    assert np.isnan(out_lat[1]) and np.isnan(out_lon[1]) and np.isnan(density[1])
    assert (out_lat[2], out_lon[2]) == SYDNEY
    weighted = kde_locations(lat[:1], lon[:1], 50.0, weights=np.array([[5.0, 1.0, 1.0]]))
    assert (weighted[0][0], weighted[1][0]) == SYDNEY  # 5 > 1 + 1


def test_bad_bandwidth_and_shapes_are_refused():
    with pytest.raises(RetrievalError, match="bandwidth_km=0"):
        kde_locations(np.zeros((1, 2)), np.zeros((1, 2)), 0.0)
    with pytest.raises(RetrievalError, match=r"expected equal \[q, k\]"):
        kde_locations(np.zeros((1, 2)), np.zeros((1, 3)), 10.0)


def index_of_places():
    """Six photos: features near (1, 0) in Paris, near (0, 1) in Sydney."""
    features = np.array([[1, 0], [0.99, 0.01], [0.98, 0.02], [0, 1], [0.01, 0.99], [0.02, 0.98]], np.float32)
    lat = np.array([PARIS[0], PARIS[0] + 0.01, PARIS[0] - 0.01, SYDNEY[0], SYDNEY[0], SYDNEY[0]])
    lon = np.array([PARIS[1]] * 3 + [SYDNEY[1]] * 3)
    return features, lat, lon


def test_knn_locations_search_then_density(tmp_path):
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    features, lat, lon = index_of_places()
    index = FeatureIndex.write(tmp_path / "i", features, [f"p{i}" for i in range(6)], lat, lon)
    out_lat, out_lon, _ = knn_locations(index, np.array([[0.9, 0.1], [0.1, 0.9]]), k=3, bandwidth_km=50.0)
    assert (out_lat[0], out_lon[0]) == PARIS  # the middle of the three Paris photos
    assert (out_lat[1], out_lon[1]) == SYDNEY


def test_write_knn_predictions_reads_the_feature_indexes(tmp_path):
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    features, lat, lon = index_of_places()
    layout = RunLayout(tmp_path)

    def store(split, n, rows_lat, rows_lon, feats, prefix):
        """What the predict stage writes: M1's table and the split's feature index."""
        meta = pd.DataFrame(
            {
                "photo_id": [f"{prefix}{i}" for i in range(n)],
                "user_hash": "u",
                "posted_at": np.zeros(n, np.int64),
                "lat": rows_lat,
                "lon": rows_lon,
                "outdoor_prob": np.full(n, -1.0, np.float32),
            }
        )
        prediction_tables.write_table(
            prediction_tables.table_from_top_k(meta, np.zeros((n, 1)), np.ones((n, 1))),
            layout.prediction_table("m1", split),
        )
        FeatureIndex.write(layout.index_dir(split), feats, meta["photo_id"], rows_lat, rows_lon)

    store("m1_train", 6, lat, lon, features, "t")
    queries = np.array([[0.95, 0.05], [0.05, 0.95]], np.float32)
    store("m23_val", 2, [48.0, -33.0], [2.0, 151.0], queries, "v")
    path = write_knn_predictions(layout, "m23_val", k=3, bandwidth_km=50.0)
    assert path == layout.prediction_table(KNN_MODEL, "m23_val")
    out = pd.read_parquet(path)
    assert list(out["photo_id"]) == ["v0", "v1"] and "top_ids" not in out.columns
    assert list(zip(out["pred_lat"], out["pred_lon"])) == [PARIS, SYDNEY]
    errors = great_circle_km(out["lat"], out["lon"], out["pred_lat"], out["pred_lon"])
    assert errors[0] == pytest.approx(great_circle_km(48.0, 2.0, *PARIS))
