"""Exact nearest-neighbour search by L2 distance over M1 features (paper appendix B, Figure 4).

Appendix B ranks photos by the L2 distance between M1's penultimate features (1536-d at full
width) and shows the six nearest with their distances. ``nearest`` does that exactly, for any
number of indexed photos, with bounded memory:

- squared distances ``|a|^2 + |b|^2 - 2 a.b`` as float32 matrix products of a block of queries
  against a block of ``block_rows`` index rows (BLAS does the work; a 1 M x 1536 index is read
  once per call, in blocks, so a ``np.load(mmap_mode="r")`` array never has to fit in memory);
  ``|a|^2`` is the same for every candidate of a query, so it is left out of the ranking;
- ``np.argpartition`` keeps each block's best candidates, merged with the best so far;
- a few more candidates than ``k`` are kept (``CANDIDATE_MARGIN``), and their distances are
  recomputed exactly in float64 from the vectors (``sqrt(sum((a - b)^2))``, never negative, so
  nothing needs clamping), then sorted by (distance, index). The float32 form only chooses the
  candidates: an indexed photo queried against itself gets exactly 0, and equal distances come
  back in index order, whatever the block size.

Memory: about ``query_rows x block_rows x 12`` bytes of scores and indices plus one index block
(``block_rows x d x 4``), about 0.4 GB with the defaults at d = 1536, whatever the index size;
plus the results, ``q x (k + margin) x 12`` bytes.
"""

from __future__ import annotations

import logging

import numpy as np

from geoloc_tf.errors import RetrievalError
from mesh.progress import Progress

log = logging.getLogger(__name__)

#: Index rows per matrix product: 16384 x 1536 float32 is 96 MiB, large enough for BLAS to run at
#: full speed, small enough that memory stays bounded whatever the index size.
DEFAULT_BLOCK_ROWS = 16384
#: Queries per matrix product; the score block is query_rows x block_rows float32 (64 MiB).
DEFAULT_QUERY_ROWS = 1024
#: Extra float32 candidates rescored exactly, so float32 rounding cannot push a true neighbour out.
CANDIDATE_MARGIN = 8
#: Bytes of float64 candidate vectors gathered at a time for the exact rescoring. Small on purpose:
#: blocks under glibc's mmap threshold reuse the same heap memory from block to block, while 64 MiB
#: blocks were mapped afresh and page-faulted on every search (the FAISS re-rank at 100 k photos x
#: 1536: 2,870 queries/s with 1 MiB blocks, 1,118-2,355 with 64 MiB).
RESCORE_BYTES = 1 << 20


def squared_norms(features: np.ndarray, block_rows: int = DEFAULT_BLOCK_ROWS) -> np.ndarray:
    """``|row|^2`` of every row as float32, one block at a time (they only rank candidates)."""
    out = np.empty(len(features), np.float32)
    for start in range(0, len(features), block_rows):
        block = np.asarray(features[start : start + block_rows], np.float32)
        out[start : start + len(block)] = np.einsum("ij,ij->i", block, block)
    return out


def nearest(
    index_features: np.ndarray,
    queries: np.ndarray,
    k: int,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    *,
    index_sq_norms: np.ndarray | None = None,
    query_rows: int = DEFAULT_QUERY_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` indexed rows nearest to each query by L2 distance, exactly.

    index_features: [n, d] float32 (an array or a read-only memory map); queries: [q, d];
    index_sq_norms: optional precomputed ``squared_norms(index_features)`` (saves one pass).
    Returns (indices [q, k'] int64, distances [q, k'] float32), nearest first, k' = min(k, n);
    ties in distance come back in index order.
    """
    features = index_features
    queries = np.ascontiguousarray(np.asarray(queries, np.float32))
    if features.ndim != 2 or queries.ndim != 2 or queries.shape[1] != features.shape[1]:
        raise RetrievalError(
            f"nearest: index {features.shape} and queries {queries.shape}; "
            "expected [n, d] and [q, d] with the same d"
        )
    if k < 1 or block_rows < 1 or query_rows < 1:
        raise RetrievalError(
            f"nearest: k={k}, block_rows={block_rows}, query_rows={query_rows}; expected each >= 1"
        )
    n, q = len(features), len(queries)
    k = min(k, n)
    if index_sq_norms is not None and len(index_sq_norms) != n:
        raise RetrievalError(f"nearest: {len(index_sq_norms)} norms for {n} index rows")
    if q == 0 or k == 0:
        return np.zeros((q, k), np.int64), np.zeros((q, k), np.float32)
    keep = min(n, k + CANDIDATE_MARGIN)
    best_score = np.full((q, keep), np.inf, np.float32)
    best_index = np.full((q, keep), -1, np.int64)
    minus_2q = -2.0 * queries  # exact in float32: a power of two
    # Lines only (no bar, no closing line): a server answers many short searches.
    progress = Progress(n, "index rows", f"search ({q} queries)", bar=False, log=log, final_line=False)
    for start in range(0, n, block_rows):
        block = np.asarray(features[start : start + block_rows], np.float32)
        norms = (
            np.asarray(index_sq_norms[start : start + len(block)], np.float32)
            if index_sq_norms is not None
            else squared_norms(block)
        )
        take = min(keep, len(block))
        for q0 in range(0, q, query_rows):
            rows = slice(q0, q0 + query_rows)
            scores = minus_2q[rows] @ block.T  # [rows, block]: -2 a.b
            scores += norms  # |b|^2 - 2 a.b: the squared distance less |a|^2
            part = (
                np.argpartition(scores, take - 1, axis=1)[:, :take]
                if take < len(block)
                else np.broadcast_to(np.arange(len(block)), scores.shape)
            )
            _merge(
                best_score[rows],
                best_index[rows],
                np.take_along_axis(scores, part, axis=1),
                part + start,
                keep,
            )
        progress.update(len(block))
    return rescore(features, queries, best_index, k)


def _merge(
    best_score: np.ndarray, best_index: np.ndarray, score: np.ndarray, index: np.ndarray, keep: int
) -> None:
    """Keeps in place the ``keep`` lowest scores of (best so far, this block's candidates)."""
    all_score = np.concatenate([best_score, score], axis=1)
    all_index = np.concatenate([best_index, index], axis=1)
    sel = np.argpartition(all_score, keep - 1, axis=1)[:, :keep]
    best_score[...] = np.take_along_axis(all_score, sel, axis=1)
    best_index[...] = np.take_along_axis(all_index, sel, axis=1)


def rescore(
    features: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 distances of each query's candidate rows [q, c]; the k nearest by
    (distance, index). A candidate of -1 (none: FAISS found fewer) is ranked last, at distance
    inf, and comes back as -1 if it is among the k."""
    q, d = queries.shape
    step = max(1, RESCORE_BYTES // (max(1, candidates.shape[1]) * d * 8))
    indices = np.empty((q, k), np.int64)
    distances = np.empty((q, k), np.float32)
    for q0 in range(0, q, step):
        cand = candidates[q0 : q0 + step]
        missing = cand < 0
        unique, inverse = np.unique(np.where(missing, 0, cand), return_inverse=True)  # sorted reads
        vectors = np.asarray(features[unique], np.float64)[inverse.reshape(cand.shape)]
        diff = vectors - queries[q0 : q0 + step, None, :].astype(np.float64)
        exact = np.where(missing, np.inf, np.sqrt(np.einsum("qkd,qkd->qk", diff, diff)))
        order = np.lexsort((cand, exact))[:, :k]  # by distance, then index
        indices[q0 : q0 + len(cand)] = np.take_along_axis(cand, order, axis=1)
        distances[q0 : q0 + len(cand)] = np.take_along_axis(exact, order, axis=1)
    return indices, distances
