"""Approximate nearest neighbours with FAISS: a compressed index stored inside a feature index.

At 12 M training photos x 1536 float32 features the exact search (``search.nearest``) reads 73 GB
per batch of queries. This index keeps, per photo, a product-quantization code of
``AnnConfig.ann_code_bytes`` bytes (96 at 1536-d) and its 8-byte row id in RAM, grouped by coarse
cell (an inverted file, IVF): a query scans only the ``ann_probes`` cells nearest to it, ranks
their photos by code distance, and the ``ann_rerank_factor x k`` best of them are ranked again by their exact
distance, read from ``features.npy`` (``search.rescore``; a memory map, so only those rows are
read). Results are exact distances, nearest first, like ``search.nearest``'s; only a true
neighbour that the codes ranked below ``ann_rerank_factor x k`` (or in an unscanned cell) can be missed.

**Why FAISS.** It is the common library for this (GeoCLIP's users forked it to add FAISS), it
installs as one wheel (``faiss-cpu``, the ``ann`` extra) and runs beside TensorFlow. ScaNN, Google's,
would fit the TensorFlow ecosystem but does not import beside TensorFlow 2.21 (BUILD.md).

**Index type** (FAISS ``index_factory`` "IVF<lists>,PQ<m>" with an exact re-rank; the file is
``ann/ivfpq.faiss``):

- coarse cells: ``ann_lists`` (default about 4 sqrt(n), a power of two, at most 16384, and at
  most one per 39 training photos: 1024 at 1 M with the default 65,536) k-means centroids trained
  on ``ann_train_photos`` evenly spaced rows; each photo is stored in its cell;
- codes: the residual of a photo from its cell's centroid in ``m`` sub-vectors of ``d / m``
  values, each quantized to one of 256 centroids (``ann_code_bits`` 8: ``m`` = 96 bytes at
  1536-d) or, with ``ann_code_bits`` 4, one of 16 scanned by SIMD (FAISS "fast scan");
- re-rank: the ``ann_rerank_factor x k`` best by code distance (FAISS's ``k_factor``) get float32 distances from their rows of
  ``features.npy``, and the best ``k + 8`` of those ``search.rescore``'s float64 ones, as the
  exact engine's last step.

Why 8 bits by default: on the demo run's M1 features (17,888 x 384) the 4-bit fast-scan codes put
only 83 % of the true 20 nearest among their first 100 candidates (the kNN row lost up to 1.7
points), 8-bit codes 99.8 % (the row within 0.04 points of the exact one); on the synthetic
benchmark both reach recall@10 >= 0.95 at 1 M photos (experiments/benchmarks/retrieval_bench.py).

Memory per photo: ``m + 8`` bytes resident (the code and the id; 104 B at the defaults, plus
the cells' centroids, ``lists x d x 4`` bytes in all), plus ``features.npy`` (``4 d`` bytes,
6144 B at 1536-d) on disk, of which only the re-ranked rows are paged in. The index is written
atomically into ``ann/`` of the index folder (``mesh.atomic``), with ``ann.json`` naming the
settings it was built with and the features it was built from; it is rebuilt when either
changes (``open_or_build``). ``ann.json`` also records the size and SHA-256 of the FAISS file,
checked before it is read (``mesh.integrity``): a damaged file is one error line.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geoloc_tf.errors import RetrievalError, first_line
from geoloc_tf.retrieval.config import AnnConfig
from geoloc_tf.retrieval.search import CANDIDATE_MARGIN, rescore
from mesh.atomic import atomic_dir
from mesh.integrity import check_written, file_entry
from mesh.progress import Progress

if TYPE_CHECKING:
    from geoloc_tf.retrieval.feature_index import FeatureIndex

log = logging.getLogger(__name__)

ANN_DIR = "ann"
ANN_FILE = "ivfpq.faiss"
ANN_META = "ann.json"
ANN_VERSION = 1
#: ``auto`` searches exactly below this many indexed photos. Measured (retrieval_bench.py, 1536-d,
#: 2 cores, quiet): at 100 k photos exact search answers ~370 queries/s; FAISS needs ~45 s to build
#: and then answers ~2,400 queries/s. The kNN row queries about 13 % of the gallery's size (the
#: demo: 2,381 against 17,888): 13 k queries at 100 k photos take ~35 s exactly, ~50 s with FAISS
#: (build included); at 1 M, ~3,900 s against ~315 s. Exact time over such a row grows with n^2,
#: FAISS's with n: they cross between 100 k and 150 k, and below 100 k exact is as fast and exact.
AUTO_MIN_PHOTOS = 100_000
#: Photos added to the index per call (1536-d float32: 96 MiB), so memory stays bounded.
ADD_BLOCK_ROWS = 16384
#: Bytes of float32 candidate rows gathered at a time for the re-rank (small: see
#: ``search.RESCORE_BYTES``).
RERANK_BYTES = 1 << 20
#: Most coarse cells the automatic ``ann_lists`` picks.
MAX_AUTO_LISTS = 16384
#: FAISS warns below 39 training points per centroid; fewer cells than that are used.
MIN_TRAIN_PER_LIST = 39
MISSING_EXTRA = (
    "FAISS is not installed: the faiss engine needs the `ann` extra (pip install 'geoloc[ann]', faiss-cpu)"
)


def import_faiss() -> Any:
    """The faiss module, or a RetrievalError naming the extra that installs it."""
    try:
        import faiss
    except ImportError:
        raise RetrievalError(MISSING_EXTRA) from None
    return faiss


def faiss_available() -> bool:
    try:
        import_faiss()
    except RetrievalError:
        return False
    return True


def resolve_engine(engine: str, count: int) -> str:
    """``exact`` or ``faiss`` for an index of ``count`` photos: ``auto`` is exact below
    ``AUTO_MIN_PHOTOS``, faiss from there on; when FAISS is missing there, auto searches exactly
    (the same neighbours, only slower: nothing is lost but time) and says so with a warning naming
    the extra. An explicit ``faiss`` without FAISS is an error."""
    if engine == "exact":
        return "exact"
    if engine == "faiss":
        import_faiss()
        return "faiss"
    if engine != "auto":
        raise RetrievalError(f"engine {engine!r}; expected exact, faiss or auto")
    if count < AUTO_MIN_PHOTOS:
        return "exact"
    if not faiss_available():
        log.warning(
            "engine auto: %d indexed photos (>= %d) call for the FAISS index, but %s; searching "
            "exactly, which reads every feature per batch of queries",
            count,
            AUTO_MIN_PHOTOS,
            MISSING_EXTRA,
        )
        return "exact"
    return "faiss"


def plan(count: int, dim: int, config: AnnConfig) -> dict:
    """The index's shape for ``count`` photos of width ``dim``: cells, sub-vectors (the largest
    divisor of ``dim`` whose codes fit ``ann_code_bytes``: PQ splits the features evenly), bits
    per code, training photos."""
    train = min(count, config.ann_train_photos)
    lists = config.ann_lists or min(MAX_AUTO_LISTS, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(count)))))
    if train // MIN_TRAIN_PER_LIST < lists:  # too few training photos: the largest power of two
        lists = 2 ** int(math.log2(max(1, train // MIN_TRAIN_PER_LIST)))
    most = config.ann_code_bytes * 8 // config.ann_code_bits
    subvectors = max(m for m in range(1, min(most, dim) + 1) if dim % m == 0)
    return {"lists": lists, "subvectors": subvectors, "bits": config.ann_code_bits, "train_photos": train}


def features_key(index: "FeatureIndex") -> dict:
    """What identifies the features an ANN index was built from: their shape and file stamp
    (``features.npy`` is only ever replaced whole, so a rewrite changes its mtime)."""
    from geoloc_tf.retrieval.feature_index import FEATURES_FILE

    stat = (index.root / FEATURES_FILE).stat()
    return {
        "count": len(index),
        "dim": index.dim,
        "features_bytes": stat.st_size,
        "features_mtime_ns": stat.st_mtime_ns,
    }


def build_key(index: "FeatureIndex", config: AnnConfig) -> dict:
    """``ann.json``'s identity of an index built from ``index``'s features with ``config``."""
    return {"version": ANN_VERSION, **config.build_key(), **features_key(index)}


def open_or_build(index: "FeatureIndex", config: AnnConfig) -> Any:
    """The FAISS index in ``index.root/ann``: read when ``ann.json`` says it was built from these
    features with these settings, else built (and written atomically) first."""
    faiss = import_faiss()
    folder = index.root / ANN_DIR
    key = build_key(index, config)
    meta_path = folder / ANN_META
    if meta_path.is_file():
        remedy = f"delete {folder} (it is built again on the next search) or rebuild with `geoloc index`"
        try:
            stored = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise RetrievalError(f"{meta_path}: not readable JSON ({first_line(error)}); {remedy}") from None
        if not isinstance(stored, dict):
            raise RetrievalError(f"{meta_path}: a JSON {type(stored).__name__}; expected an object; {remedy}")
        if stored.get("key") == key:
            # ``file``: size and SHA-256 of the FAISS file (mesh.integrity), absent before checksums
            check_written(folder / ANN_FILE, stored.get("file"), remedy)
            try:
                return faiss.read_index(str(folder / ANN_FILE))
            except RuntimeError as error:
                raise RetrievalError(
                    f"{folder / ANN_FILE}: not a readable FAISS index ({first_line(error)}); {remedy}"
                ) from None
        log.info("%s: built from other features or settings; building again", folder)
    return build(index, config)


def build(index: "FeatureIndex", config: AnnConfig) -> Any:
    """Trains the IVF-PQ index on evenly spaced rows, adds every photo in blocks of
    ``ADD_BLOCK_ROWS`` and writes ``ann/`` (``ivfpq.faiss``, ``ann.json``) atomically."""
    faiss = import_faiss()
    n, d = len(index), index.dim
    if n == 0:
        raise RetrievalError(f"{index.root}: no photos; expected an index with features to build from")
    shape = plan(n, d, config)
    started = time.monotonic()
    ivf = faiss.index_factory(d, factory(shape), faiss.METRIC_L2)
    rows = np.linspace(0, n - 1, shape["train_photos"]).round().astype(np.int64)
    ivf.train(np.ascontiguousarray(index.features[np.unique(rows)], np.float32))
    trained = time.monotonic()
    with Progress(n, "photos", "FAISS add", log=log, final_line=False) as progress:  # closing line below
        for start in range(0, n, ADD_BLOCK_ROWS):
            ivf.add(np.ascontiguousarray(index.features[start : start + ADD_BLOCK_ROWS], np.float32))
            progress.update(min(ADD_BLOCK_ROWS, n - start))
    seconds = time.monotonic() - started
    folder = index.root / ANN_DIR
    with atomic_dir(folder) as tmp:
        faiss.write_index(ivf, os.path.join(tmp, ANN_FILE))
        meta = {
            "key": build_key(index, config),
            **shape,
            "factory": factory(shape),
            "resident_bytes_per_photo": (shape["subvectors"] * shape["bits"] + 7) // 8 + 8,
            "train_s": round(trained - started, 1),
            "build_s": round(seconds, 1),
            "file": file_entry(os.path.join(tmp, ANN_FILE)),
        }
        Path(tmp, ANN_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    log.info(
        "%s: %s of %d x %d features in %.0f s (training %.0f s)",
        folder,
        factory(shape),
        n,
        d,
        seconds,
        trained - started,
    )
    return ivf


def factory(shape: dict) -> str:
    """FAISS's name of the index: an inverted file of ``lists`` cells over PQ codes, 8 bits per
    sub-vector, or 4 bits scanned with SIMD lookups ("fast scan", André et al. 2019).

    "np": no polysemous training. ``index_factory`` otherwise reorders each 8-bit codebook for
    Hamming-distance pre-filtering (polysemous codes), which this search never uses and which took
    99 % of the training time (27 s against 0.3 s for IVF32,PQ16 on 2,000 x 64)."""
    codes = f"PQ{shape['subvectors']}np" if shape["bits"] == 8 else f"PQ{shape['subvectors']}x4fs"
    return f"IVF{shape['lists']},{codes}"


def probes(config: AnnConfig, photos: int, lists: int) -> int:
    """Cells a query scans: ``ann_probes``, or more where cells are small, so that about
    ``ann_min_scan`` photos are scanned (cells hold ``photos / lists`` on average); at most all."""
    per_cell = photos / max(lists, 1)
    needed = math.ceil(config.ann_min_scan / per_cell) if per_cell else lists
    return int(min(max(config.ann_probes, needed), lists))


def search(
    ivf: Any, index: "FeatureIndex", queries: np.ndarray, k: int, config: AnnConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest of ``ann_rerank_factor x k`` FAISS candidates by exact distance: (rows [q, k],
    distances [q, k]) as ``search.nearest`` returns them; a row of -1 (distance inf) marks a
    missing neighbour (fewer than k photos in the scanned cells).

    The candidates are ranked by float32 ``|b|^2 - 2 a.b`` from their rows of ``features.npy``
    (the stored norms), and the best ``k + CANDIDATE_MARGIN`` of them get ``search.rescore``'s
    float64 distances, as in the exact search: the same distances and tie order for the same
    neighbours."""
    ivf.nprobe = probes(config, ivf.ntotal, ivf.nlist)
    _, candidates = ivf.search(queries, k * config.ann_rerank_factor)
    keep = min(candidates.shape[1], k + CANDIDATE_MARGIN)
    best = np.empty((len(queries), keep), np.int64)
    step = max(1, RERANK_BYTES // (candidates.shape[1] * index.dim * 4))
    for q0 in range(0, len(queries), step):
        cand = candidates[q0 : q0 + step]
        missing = cand < 0
        rows = np.where(missing, 0, cand)
        unique, inverse = np.unique(rows, return_inverse=True)  # sorted: sequential reads
        vectors = np.asarray(index.features[unique], np.float32)
        dots = np.matmul(vectors[inverse.reshape(cand.shape)], queries[q0 : q0 + step, :, None])[..., 0]
        scores = np.asarray(index.sq_norms[unique], np.float32)[inverse.reshape(cand.shape)] - 2 * dots
        scores[missing] = np.inf
        part = np.argpartition(scores, keep - 1, axis=1)[:, :keep]
        best[q0 : q0 + len(cand)] = np.take_along_axis(cand, part, axis=1)
    return rescore(index.features, queries, best, k)
