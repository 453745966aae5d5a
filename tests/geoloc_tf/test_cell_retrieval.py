"""Retrieval inside M1's top cells (Vo et al. 2017; Kordopatis-Zilos et al. 2021) on hand-made
features: score log p(cell) + cos / T over the neighbours in the top cells, else the top cell's
label point, counted."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from geoloc_tf.errors import RetrievalError
from geoloc_tf.retrieval.cell_retrieval import (
    cosine_from_distances,
    log_fallback,
    retrieve_in_top_cells,
    score_in_top_cells,
)
from geoloc_tf.retrieval.config import CellRetrievalConfig
from geoloc_tf.retrieval.feature_index import FeatureIndex

A, B = 0, 1  # the two cells
LABEL_POINTS = np.array([[0.0, 0.0], [30.0, 30.0]])  # the label point of A, of B
# Four training photos: unit features at known angles from the query direction (1, 0), so each
# cosine is its first component: 0.8 and 0.6 in A, 1.0 and 0.0 in B.
TRAIN_FEATURES = [[0.8, 0.6], [0.6, 0.8], [1.0, 0.0], [0.0, 1.0]]
TRAIN_CELLS = np.array([A, A, B, B])
TRAIN_LAT = [10.0, 11.0, 20.0, 21.0]
TRAIN_LON = [-10.0, -11.0, -20.0, -21.0]
QUERY = [2.0, 0.0]  # norm 2: the cosine ignores the query's length


@pytest.fixture
def index(tmp_path):
    return FeatureIndex.write(
        tmp_path / "index", TRAIN_FEATURES, ["a0", "a1", "b0", "b1"], TRAIN_LAT, TRAIN_LON
    )


def retrieve(index, top_ids, top_probs, cells, neighbours=4, temperature=0.1):
    config = CellRetrievalConfig(
        cell_retrieval_cells=cells,
        cell_retrieval_neighbours=neighbours,
        cell_retrieval_temperature=temperature,
    )
    queries = np.array([QUERY] * len(top_ids), np.float32)
    return retrieve_in_top_cells(
        index, TRAIN_CELLS, queries, np.array(top_ids), np.array(top_probs), LABEL_POINTS, config, "exact"
    )


def test_the_most_similar_photo_inside_the_top_cell_wins_over_a_more_similar_one_outside(index):
    # Query 0: M1 says A (60 %) then B; query 1: B (90 %) then A. One top cell is searched.
    got = retrieve(index, [[A, B], [B, A]], [[0.6, 0.4], [0.9, 0.1]], cells=1)
    # Query 0: b0 (cosine 1.0) is the most similar photo, but it lies in B: a0 (0.8) inside A wins.
    assert got.row.tolist() == [0, 2] and not got.fallback.any()
    assert list(zip(got.lat, got.lon)) == [(10.0, -10.0), (20.0, -20.0)]
    np.testing.assert_allclose(got.similarity, [0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(got.score, [np.log(0.6) + 8.0, np.log(0.9) + 10.0], atol=1e-5)


def test_with_two_cells_the_higher_score_wins_and_the_temperature_weighs_the_cell(index):
    # Both cells searched, A at 60 %, B at 40 %:
    # T = 0.1: a0 scores log 0.6 + 0.8 / 0.1 = 7.49, b0 log 0.4 + 1.0 / 0.1 = 9.08: b0 (in B).
    sharp = retrieve(index, [[A, B]], [[0.6, 0.4]], cells=2, temperature=0.1)
    assert sharp.row.tolist() == [2] and (sharp.lat[0], sharp.lon[0]) == (20.0, -20.0)
    assert sharp.score[0] == pytest.approx(np.log(0.4) + 10.0, abs=1e-5)
    # T = 10: a0 log 0.6 + 0.08 = -0.431, b0 log 0.4 + 0.1 = -0.816: the more probable cell, A.
    flat = retrieve(index, [[A, B]], [[0.6, 0.4]], cells=2, temperature=10.0)
    assert flat.row.tolist() == [0] and (flat.lat[0], flat.lon[0]) == (10.0, -10.0)
    assert flat.score[0] == pytest.approx(np.log(0.6) + 0.08, abs=1e-6)


def test_no_neighbour_in_the_top_cells_falls_back_to_the_top_label_point_and_is_counted(index, caplog):
    # One neighbour only: b0 (L2 distance 1, the nearest to (2, 0)), in B; query 0's top cell is A.
    got = retrieve(index, [[A, B], [B, A]], [[0.6, 0.4], [0.9, 0.1]], cells=1, neighbours=1)
    assert got.fallback.tolist() == [True, False] and got.num_fallback == 1
    assert (got.lat[0], got.lon[0]) == (0.0, 0.0)  # A's label point
    assert got.row[0] == -1 and np.isnan(got.score[0]) and np.isnan(got.similarity[0])
    assert (got.lat[1], got.lon[1]) == (20.0, -20.0)
    with caplog.at_level(logging.WARNING):
        log_fallback("toy", got)
    assert "1 of 2 photos (50.0 %)" in caplog.text


def test_a_cell_with_probability_zero_is_not_searched():
    best, score = score_in_top_cells(np.array([[1, 0]]), np.array([[0.9, 0.1]]), [[0, 1]], [[1.0, 0.0]], 1.0)
    assert best.tolist() == [1] and score[0] == pytest.approx(0.1)
    best, score = score_in_top_cells(np.array([[1, -1]]), np.array([[0.9, 0.9]]), [[0, 1]], [[1.0, 0.0]], 1.0)
    assert best.tolist() == [-1] and score[0] == -np.inf  # a missing neighbour (-1) matches nothing


def test_cosine_from_l2_distances():
    a, b = np.array([3.0, 4.0]), np.array([[4.0, 3.0], [0.0, 0.0]])  # |a| = |b0| = 5
    distances = np.linalg.norm(b - a, axis=1)[None, :]
    cosine = cosine_from_distances(distances, np.array([25.0]), (b**2).sum(axis=1)[None, :])
    np.testing.assert_allclose(cosine, [[24.0 / 25.0, 0.0]])  # a zero vector has no direction


def test_more_cells_than_m1_stored_is_refused(index):
    with pytest.raises(RetrievalError, match="cell_retrieval_cells=3.*2 cells per photo"):
        retrieve(index, [[A, B]], [[0.6, 0.4]], cells=3)
