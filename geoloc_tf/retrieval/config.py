"""Settings of `geoloc index` (``feature_index.build_index``) and `geoloc search` (``query``), each
declared once (``mesh.settings``); the commands' options are derived from them
(``experiments.commands``). Imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses

from data_pipelines.config import FILES_MAX_PIXELS, DecodeBudget, decode_budget, max_pixels_setting
from data_pipelines.splits import M1_TRAIN, SPLITS
from mesh.settings import check_settings, nested, setting

SEARCH_FORMATS = ("table", "json")

#: How neighbours are found: exactly (``search.nearest``), with the FAISS index (``ann``), or
#: ``auto``: exact below ``ann.AUTO_MIN_PHOTOS`` indexed photos, FAISS from there on.
ENGINES = ("exact", "faiss", "auto")


def engine_setting() -> str:
    """The retrieval engine, declared once for `geoloc index`, `geoloc search` and the runner's
    "M1 kNN" row (``EvaluateConfig.knn_engine``)."""
    return setting(
        "auto",
        "Nearest-neighbour engine: exact (every indexed photo, blocked float32 products), faiss "
        "(a compressed IVF-PQ index in the index folder, re-ranked by exact distance; the `ann` "
        "extra), auto: exact below 100,000 indexed photos, where building FAISS costs about what it "
        "saves (measured: geoloc_tf/retrieval/ann.py AUTO_MIN_PHOTOS), faiss from there on.",
        choices=ENGINES,
    )


@dataclasses.dataclass(frozen=True)
class AnnConfig:
    """The FAISS index of an index folder (``geoloc_tf.retrieval.ann``): how it is built and
    searched. Values measured at 1 M x 1536 (experiments/benchmarks/retrieval_bench.py)."""

    ann_lists: int = setting(
        0,
        "Coarse cells of the inverted file (IVF); a query scans --ann_probes of them. 0: about "
        "4 x sqrt(indexed photos), rounded to a power of two, at most 16384 (FAISS's guideline "
        "4..16 sqrt(n)).",
        minimum=0,
    )
    ann_code_bytes: int = setting(
        96,
        "Bytes per photo of the product-quantization code (96: 96 sub-vectors of 16 values at "
        "1536-d, 8 bits each), enough for the exact re-rank of --ann_rerank_factor x k candidates to reach "
        "recall@10 >= 0.95 at 1 M photos; fewer bytes, less memory, worse candidates.",
        minimum=1,
    )
    ann_code_bits: int = setting(
        8,
        "Bits per sub-vector code. 8: 256 centroids, scanned by table lookups. 4: 16 centroids, "
        "twice the sub-vectors in the same bytes, scanned with SIMD (FAISS fast scan), several "
        "times faster, but its candidates are coarser: on the demo's M1 features recall@20 was "
        "0.83 against 0.998 with 8 bits (re-rank 100).",
        choices=(4, 8),
    )
    ann_train_photos: int = setting(
        65536,
        "Photos sampled (evenly spaced rows) to train the cells and the codes: >= 39 per cell "
        "is FAISS's minimum, and k-means time grows with it.",
        minimum=256,
    )
    ann_probes: int = setting(
        8,
        "Cells scanned per query (FAISS nprobe): more finds more true neighbours, slower. 8 of "
        "1024 cells at 1 M photos: recall@10 0.98 at over 20x exact search's queries/s "
        "(16: 0.995 at about 15x; BUILD.md); on the demo's M1 features recall@20 0.988 (16: 0.998).",
        minimum=1,
    )
    ann_min_scan: int = setting(
        1000,
        "Photos a query scans at least: more cells than --ann_probes where cells are small. At "
        "1 M photos a cell holds ~1,000 and 8 cells suffice; the demo's 16,888 M1 training photos "
        "in 256 cells of ~66 get 16 (with 8 the kNN row's outdoor accuracy at 750 km fell 0.58 "
        "points below the exact search's; with 16, 0.04).",
        minimum=0,
    )
    ann_rerank_factor: int = setting(
        5,
        "Candidates per neighbour asked for (FAISS's k_factor): the codes' best factor x k "
        "photos get their exact distance from features.npy, and the k nearest of them are "
        "returned. 5: recall@10 0.98 at 1 M with 50 candidates; the kNN row's k = 20 gets 100 "
        "(its 20th neighbour is ranked by the codes as badly as a 10th one is at twice the "
        "candidates). Each candidate reads 4 d bytes (300 KB per query at 1536-d and k = 10).",
        minimum=1,
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def build_key(self) -> dict:
        """The settings that change the index file (the rest only change how it is searched)."""
        return {
            "lists": self.ann_lists,
            "code_bytes": self.ann_code_bytes,
            "code_bits": self.ann_code_bits,
            "train_photos": self.ann_train_photos,
        }


@dataclasses.dataclass(frozen=True)
class CellRetrievalConfig:
    """Retrieval inside M1's top cells (``geoloc_tf.retrieval.cell_retrieval``): the predicted point
    is the location of the best-scoring indexed (training) photo among the query's nearest
    neighbours that lie in one of M1's top cells. Declared once, nested in the runner's evaluate
    section and in `geoloc predict` and `geoloc serve`."""

    cell_retrieval_cells: int = setting(
        0,
        "Beyond the paper: also predict a point by retrieval inside M1's top cells (Vo, Jacobs and "
        "Hays 2017; Kordopatis-Zilos et al. 2021 search within the predicted cell): the location "
        "of the training photo j among the query's nearest neighbours in M1's feature space, lying "
        "in one of M1's this many most probable cells, with the best log p(cell_j) + "
        "cosine(query, j) / --cell_retrieval_temperature; the top cell's label point when none "
        "does (counted). Needs M1's features of the training photos (a feature index). 0: off "
        "(the paper). At most the top cells M1's predictions store.",
        minimum=0,
    )
    cell_retrieval_neighbours: int = setting(
        100,
        "Nearest training photos in M1's feature space (L2, the feature index's search) among "
        "which retrieval inside the top cells looks for photos of those cells; more: fewer "
        "queries fall back to the top cell's label point, slower (our choice).",
        minimum=1,
    )
    cell_retrieval_temperature: float = setting(
        0.1,
        "Temperature of the cosine similarity in retrieval inside the top cells: small, the most "
        "similar photo of any top cell wins; large, the most probable cell decides and "
        "similarity picks the photo inside it (our choice; with --cell_retrieval_cells=1 it does "
        "not matter).",
        minimum=0.0,
        min_exclusive=True,
    )

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """Which photos of a run `geoloc index` stores M1's features of, and how fast."""

    split: str = setting(
        M1_TRAIN,
        "Split of the run's data set to index (default: M1's training "
        "photos, whose locations the neighbours report).",
        choices=SPLITS,
    )
    batch_size: int = setting(128, "Photos per M1 forward pass.", minimum=1, affects_outputs=False)
    engine: str = engine_setting()
    ann: AnnConfig = nested(AnnConfig, "The FAISS index built with --engine=faiss (or auto).")

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What `geoloc search` returns for a query image (appendix B, Figure 4)."""

    k: int = setting(6, "Neighbours to return (Figure 4: 6).", minimum=1)
    format: str = setting("table", "Output: an aligned table, or JSON.", choices=SEARCH_FORMATS)
    max_pixels: int = max_pixels_setting(FILES_MAX_PIXELS)
    decode: DecodeBudget = decode_budget()
    engine: str = engine_setting()
    ann: AnnConfig = nested(AnnConfig, "The FAISS index searched with --engine=faiss (or auto).")

    def __post_init__(self) -> None:
        check_settings(self)
