"""Retrieval inside M1's top cells: a point from the training photos of the cells M1 finds likely.

Beyond the paper. M1 classifies a photo into mesh cells and its predicted point is the top cell's
label point, so its error is at least the distance from the true place to that point. Vo, Jacobs and
Hays (2017, "Revisiting IM2GPS in the deep learning era") locate a photo by retrieval in the feature
space of a network trained to classify cells, and Kordopatis-Zilos et al. (2021, "Leveraging
EfficientNet and contrastive learning for accurate global-scale location estimation") search
within the predicted cell: the classifier says where, the most similar geotagged photo there says
exactly where. Here the geotagged photos are M1's training split and the features M1's own
(the run's feature index, ``feature_index``), so the row "M1 Cell Retrieval" is a third predictor
from the same network, scored next to M1 and "M1 kNN".

For a query with M1's top cells c_1..c_K (probabilities p) and its N nearest training photos in
feature space, each neighbour j whose cell cell_j is one of c_1..c_K scores

    score_j = log p(cell_j) + cos(f_query, f_j) / temperature

and the prediction is the location of the best-scoring neighbour. Choices, ours where the papers
are silent:

- the candidates are the N nearest photos by L2 distance (the index's own search, exact or FAISS:
  ``FeatureIndex.search``), not every photo of the top cells: a cell of a 1 M-photo index may hold
  tens of thousands, and the photos that matter are the similar ones. The similarity is the cosine
  of the features, computed from the L2 distances and the stored squared norms
  (``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``, no second read of the features): bounded in [-1, 1], so
  the temperature has one meaning whatever the features' scale;
- a log-probability plus a scaled similarity is the log of p(cell) x exp(sim / T), a product of
  experts: with ``cells = 1`` it is Kordopatis-Zilos et al.'s rule (the most similar photo inside
  the predicted cell); with more cells, a small temperature lets similarity choose the cell, a
  large one lets M1's probability choose it and similarity the photo inside;
- a training photo's cell is the one its coordinates lie in (``data_pipelines.labels``, how M1's
  labels were made); photos of cells the mesh dropped belong to no top cell;
- **fallback**: when none of the N neighbours lies in a top cell (or the top cells' probabilities
  are 0), the prediction is M1's own, the top cell's label point (the imagery centroid, §3.1.2,
  the report's label point). Such photos are counted and logged, and flagged per photo
  (``retrieval_fallback``), so a row that is mostly M1 cannot pass for retrieval;
- ties in score go to the nearer neighbour in feature space.

Settings: ``retrieval.config.CellRetrievalConfig`` (``--evaluate_cell_retrieval_cells``,
``--evaluate_cell_retrieval_neighbours``, ``--evaluate_cell_retrieval_temperature`` in the runner;
``--cell_retrieval_*`` in `geoloc predict` and `geoloc serve`). The neighbour search's engine is
the kNN row's (``--evaluate_knn_engine``), or the command's ``--engine``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geoloc_tf.errors import RetrievalError

if TYPE_CHECKING:
    from geoloc_tf.retrieval.config import AnnConfig, CellRetrievalConfig
    from geoloc_tf.retrieval.feature_index import FeatureIndex
    from geoloc_tf.run_layout import RunLayout

log = logging.getLogger(__name__)

#: Name of the predictor's prediction tables, ``predictions/m1_cell_retrieval/<split>.parquet``.
CELL_RETRIEVAL_MODEL = "m1_cell_retrieval"
#: Queries scored at once: [chunk, N, K] comparisons (2048 x 100 x 10 bytes = 2 MB).
QUERY_CHUNK = 2048


@dataclasses.dataclass(frozen=True)
class Retrieved:
    """Retrieval inside the top cells for q queries (one entry per query)."""

    lat: np.ndarray  # float64 [q] predicted point, degrees
    lon: np.ndarray  # float64 [q]
    row: np.ndarray  # int64 [q] the retrieved indexed photo's row; -1 where it fell back
    score: np.ndarray  # float64 [q] its log p(cell) + cos / T; NaN where it fell back
    similarity: np.ndarray  # float64 [q] its cosine similarity to the query; NaN where it fell back
    fallback: np.ndarray  # bool [q]: no neighbour in a top cell, the top cell's label point

    @property
    def num_fallback(self) -> int:
        return int(self.fallback.sum())


def cosine_from_distances(
    distances: np.ndarray, query_sq_norms: np.ndarray, neighbour_sq_norms: np.ndarray
) -> np.ndarray:
    """Cosine similarity [q, n] from L2 distances [q, n], the queries' squared norms [q] and the
    neighbours' [q, n]: ``(|a|^2 + |b|^2 - d^2) / (2 |a| |b|)``, clipped to [-1, 1]; 0 where a
    vector is zero (no direction)."""
    a2 = np.asarray(query_sq_norms, np.float64)[:, None]
    b2 = np.asarray(neighbour_sq_norms, np.float64)
    d2 = np.asarray(distances, np.float64) ** 2
    denominator = 2.0 * np.sqrt(a2 * b2)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(denominator > 0, (a2 + b2 - d2) / denominator, 0.0)
    return np.clip(np.nan_to_num(cosine, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)


def score_in_top_cells(
    neighbour_cells: np.ndarray,
    similarity: np.ndarray,
    top_ids: np.ndarray,
    top_probs: np.ndarray,
    temperature: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(best neighbour column [q], its score [q]) of ``log p(cell_j) + similarity_j / temperature``
    over the neighbours whose cell is one of the query's ``top_ids`` (module docstring).

    neighbour_cells: [q, n] cell of each neighbour, nearest first (-1: none, or a dropped cell);
    similarity: [q, n]; top_ids, top_probs: [q, K] the cells to search and M1's probabilities. A
    query with no neighbour in its top cells gets column -1 and score -inf; ties go to the nearer
    neighbour (the first maximum).
    """
    cells = np.asarray(neighbour_cells, np.int64)
    sim = np.asarray(similarity, np.float64)
    ids = np.asarray(top_ids, np.int64)
    probs = np.asarray(top_probs, np.float64)
    if cells.ndim != 2 or sim.shape != cells.shape or ids.ndim != 2 or probs.shape != ids.shape:
        raise RetrievalError(
            f"score_in_top_cells: neighbour cells {cells.shape}, similarity {sim.shape}, top ids "
            f"{ids.shape}, probabilities {probs.shape}; expected [q, n], [q, n], [q, K], [q, K]"
        )
    if len(ids) != len(cells):
        raise RetrievalError(f"score_in_top_cells: {len(cells)} queries' neighbours, {len(ids)} top cells")
    if not temperature > 0:
        raise RetrievalError(f"score_in_top_cells: temperature={temperature}; expected > 0")
    q = len(cells)
    best = np.full(q, -1, np.int64)
    score = np.full(q, -np.inf)
    if q == 0 or cells.shape[1] == 0 or ids.shape[1] == 0:
        return best, score
    with np.errstate(divide="ignore"):
        log_probs = np.log(probs)  # 0 -> -inf: a cell M1 rules out is not searched
    for start in range(0, q, QUERY_CHUNK):
        rows = slice(start, start + QUERY_CHUNK)
        match = (cells[rows, :, None] == ids[rows, None, :]) & (cells[rows, :, None] >= 0)  # [c, n, K]
        log_p = np.where(match, log_probs[rows, None, :], -np.inf).max(axis=2)  # [c, n]
        scores = np.where(np.isfinite(log_p), log_p + sim[rows] / temperature, -np.inf)
        column = np.argmax(scores, axis=1)  # the first maximum: the nearest neighbour
        top = np.take_along_axis(scores, column[:, None], axis=1)[:, 0]
        found = np.isfinite(top)
        best[rows] = np.where(found, column, -1)
        score[rows] = top
    return best, score


def retrieve_in_top_cells(
    index: "FeatureIndex",
    photo_cells: np.ndarray,
    queries: np.ndarray,
    top_ids: np.ndarray,
    top_probs: np.ndarray,
    label_points: np.ndarray,
    config: "CellRetrievalConfig",
    engine: str = "exact",
    ann: "AnnConfig | None" = None,
) -> Retrieved:
    """Retrieval inside the top cells for feature ``queries`` [q, d] (module docstring).

    photo_cells: [n] the cell of each indexed photo (``photo_cells``); top_ids, top_probs: [q, k]
    M1's most probable cells, best first, of which the first ``config.cell_retrieval_cells`` are
    searched; label_points: [num_cells, 2] (lat, lon) degrees, the fallback's points.
    """
    k_cells = int(config.cell_retrieval_cells)
    top_ids, top_probs = np.asarray(top_ids), np.asarray(top_probs)
    queries = np.asarray(queries, np.float32)
    if k_cells < 1:
        raise RetrievalError(f"cell_retrieval_cells={k_cells}; expected >= 1 (0 turns retrieval off)")
    if top_ids.ndim != 2 or top_ids.shape != top_probs.shape or len(top_ids) != len(queries):
        raise RetrievalError(
            f"top cells {top_ids.shape}, probabilities {top_probs.shape} for {len(queries)} "
            "queries; expected [q, k] each"
        )
    if top_ids.shape[1] < k_cells:
        raise RetrievalError(
            f"cell_retrieval_cells={k_cells}, but M1's predictions hold {top_ids.shape[1]} cells "
            "per photo; expected at most that many (--predict_top_k)"
        )
    photo_cells = np.asarray(photo_cells, np.int64)
    if photo_cells.shape != (len(index),):
        raise RetrievalError(
            f"{index.root}: {photo_cells.shape} photo cells for {len(index)} indexed photos; expected one each"
        )
    q = len(queries)
    rows, distances = (
        index.search(queries, int(config.cell_retrieval_neighbours), engine, ann)
        if q
        else (np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float32))
    )
    found = rows >= 0
    safe = np.where(found, rows, 0)  # gathers below are masked by `found`
    neighbour_cells = np.where(found, photo_cells[safe], -1)
    query_sq = np.einsum("ij,ij->i", queries.astype(np.float64), queries.astype(np.float64))
    neighbour_sq = np.asarray(index.sq_norms, np.float64)[safe]
    similarity = cosine_from_distances(distances, query_sq, neighbour_sq)
    column, score = score_in_top_cells(
        neighbour_cells,
        similarity,
        top_ids[:, :k_cells],
        top_probs[:, :k_cells],
        config.cell_retrieval_temperature,
    )
    hit = column >= 0
    row = np.full(q, -1, np.int64)
    row[hit] = safe[hit, column[hit]]
    sim = np.full(q, np.nan)
    sim[hit] = similarity[hit, column[hit]]
    fallback_point = np.asarray(label_points, np.float64)[np.asarray(top_ids[:, 0], np.int64)]
    lat, lon = fallback_point[:, 0].copy(), fallback_point[:, 1].copy()
    lat[hit] = index.photos["lat"].to_numpy(np.float64)[row[hit]]
    lon[hit] = index.photos["lon"].to_numpy(np.float64)[row[hit]]
    return Retrieved(
        lat=lat,
        lon=lon,
        row=row,
        score=np.where(hit, score, np.nan),
        similarity=sim,
        fallback=~hit,
    )


class CellRetriever:
    """A feature index opened with its photos' cells and the mesh's label points, answering photos
    batch by batch (`geoloc predict`, `geoloc serve`: ``Predictor.with_retrieval``)."""

    def __init__(self, index: "FeatureIndex", mesh, config: "CellRetrievalConfig", engine: str = "auto"):
        if config.cell_retrieval_cells < 1:
            raise RetrievalError(
                f"cell_retrieval_cells={config.cell_retrieval_cells}; expected >= 1 (0 turns retrieval off)"
            )
        if config.cell_retrieval_cells > mesh.num_cells:
            raise RetrievalError(
                f"cell_retrieval_cells={config.cell_retrieval_cells}; expected at most the mesh's "
                f"{mesh.num_cells} cells"
            )
        self.index, self.config, self.engine = index, config, engine
        self.photo_cells = photo_cells(index, mesh)
        self.label_points = mesh.imagery_centroids

    @classmethod
    def open(
        cls, path: str | Path, mesh, config: "CellRetrievalConfig", engine: str = "auto"
    ) -> "CellRetriever":
        from geoloc_tf.retrieval.feature_index import FeatureIndex

        return cls(FeatureIndex.open(path), mesh, config, engine)

    def retrieve(self, features: np.ndarray, top_ids: np.ndarray, top_probs: np.ndarray) -> Retrieved:
        """Retrieval inside the top cells of photos with M1 ``features`` [q, d] and their cells
        ``top_ids``/``top_probs`` [q, >= cells], best first."""
        return retrieve_in_top_cells(
            self.index,
            self.photo_cells,
            features,
            top_ids,
            top_probs,
            self.label_points,
            self.config,
            self.engine,
        )


def photo_cells(index: "FeatureIndex", mesh) -> np.ndarray:
    """int64 [n]: the mesh cell of each indexed photo (-1: a cell the mesh dropped), as M1's labels
    were made (``data_pipelines.labels.locate_labels``)."""
    from data_pipelines.labels import locate_labels

    return locate_labels(mesh, index.photos["lat"].to_numpy(), index.photos["lon"].to_numpy())


def log_fallback(what: str, retrieved: Retrieved) -> None:
    """Says how many photos took the fallback (the top cell's label point): a warning when any did."""
    n, fell = len(retrieved.fallback), retrieved.num_fallback
    if fell:
        log.warning(
            "%s: %d of %d photos (%.1f %%) had no neighbour in M1's top cells and got the top "
            "cell's label point (raise --cell_retrieval_neighbours or --cell_retrieval_cells)",
            what,
            fell,
            n,
            100.0 * fell / n,
        )


def write_cell_retrieval_predictions(
    layout: "RunLayout",
    split: str,
    config: "CellRetrievalConfig",
    index_split: str = "m1_train",
    engine: str = "exact",
) -> Path:
    """``predictions/m1_cell_retrieval/<split>.parquet``: retrieval inside M1's top cells for every
    photo of ``split``, from M1's table of that split (its top cells), the split's stored features
    and ``index_split``'s feature index (``layout.index_dir``, written by the predict stage with
    --predict_store_features). A point table (``prediction_tables.table_from_points``) with, per
    photo, ``retrieval_photo_id`` (the retrieved training photo, empty on fallback),
    ``retrieval_similarity``, ``retrieval_score`` and ``retrieval_fallback``."""
    from geoloc_tf import prediction_tables
    from geoloc_tf.retrieval.knn import open_index_and_queries
    from mesh import Mesh

    index, queries = open_index_and_queries(layout, index_split, split)
    table_path = layout.prediction_table("m1", split)
    table, top_ids, top_probs = prediction_tables.read_table(table_path)
    if list(table["photo_id"]) != list(queries.photos["photo_id"]):
        raise RetrievalError(
            f"{queries.root}: photos differ from {table_path}; expected the features of the same "
            "predict stage (rerun it)"
        )
    mesh = Mesh.load(layout.mesh)
    retrieved = retrieve_in_top_cells(
        index,
        photo_cells(index, mesh),
        queries.features,
        top_ids if len(table) else np.zeros((0, config.cell_retrieval_cells), np.int32),
        top_probs if len(table) else np.zeros((0, config.cell_retrieval_cells), np.float32),
        mesh.imagery_centroids,
        config,
        engine,
    )
    frame = prediction_tables.table_from_points(table, retrieved.lat, retrieved.lon)
    ids = index.photos["photo_id"].to_numpy(object)
    frame["retrieval_photo_id"] = np.where(retrieved.fallback, "", ids[np.maximum(retrieved.row, 0)])
    frame["retrieval_similarity"] = retrieved.similarity.astype(np.float32)
    frame["retrieval_score"] = retrieved.score
    frame[prediction_tables.FALLBACK_COLUMN] = retrieved.fallback
    path = prediction_tables.write_table(frame, layout.prediction_table(CELL_RETRIEVAL_MODEL, split))
    log_fallback(f"retrieval inside the top cells, {split}", retrieved)
    log.info(
        "retrieval inside the top cells %s: %d photos, %d cells, %d neighbours, temperature %g, "
        "engine %s, index %s (%d photos), %d fell back to the top cell -> %s",
        split,
        len(frame),
        config.cell_retrieval_cells,
        config.cell_retrieval_neighbours,
        config.cell_retrieval_temperature,
        engine,
        index_split,
        len(index),
        retrieved.num_fallback,
        path,
    )
    return path
