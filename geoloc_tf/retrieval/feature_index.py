"""An on-disk index of M1's penultimate features for query by example (paper appendix B).

Appendix B retrieves the photos whose M1 features are nearest to a query's (Figure 4). An index
is a directory:

| file | content |
|---|---|
| ``features.npy`` | float32 [n, d] features (d = 1536 at full width), opened as a memory map |
| ``sq_norms.npy`` | float32 [n] squared L2 norms, so a search never recomputes them |
| ``photos.parquet`` | ``photo_id``, ``lat``, ``lon`` per row; with ``record``, ``offset`` when built from a run |
| ``index.json`` | format version, n, d, model, split, data root, record files (relative to it), size and SHA-256 of each file above (``files``) |

Every file is checked when the index is opened (``FeatureIndex.open``, ``mesh.integrity``): a
damaged, truncated or swapped file, or features of NaN, is one error line naming the file.

``features.npy`` is opened with ``np.load(mmap_mode="r")``: a 1 M x 1536 index (5.7 GiB) is paged
in by the search block by block and never copied into memory twice.

**Images for the query sheet.** A row built from a run keeps where its photo's record lies
(``record``: position in ``index.json``'s ``record_files``, ``offset``: its place in that
TFRecord file), not a thumbnail: the sheet needs only k images, which are read from the
TFRecords already on disk, while thumbnails of 1 M photos would add gigabytes to the index.

This is the one store of M1's features in a run (``RunLayout.index_dir(split)``): the predict stage
with ``--predict_store_features`` writes one per split from its per-shard parts
(``assemble_index``), the "M1 kNN" row (``geoloc_tf.retrieval.knn``) and `geoloc search` read it.

An index is written into a temporary directory and renamed into place (``mesh.atomic.atomic_dir``): a
reader never sees half an index. ``build_index`` (`geoloc index`, for a run predicted without
features) runs M1 over one split of the run's TFRecords one record shard at a time
(``geoloc_tf.m1.predict_records.predict_parts``, the prediction stage's own code and input pipeline);
finished shards are kept in ``.<name>.build/``, so a killed build redoes only the unfinished ones. It
runs under the run's tf.distribute strategy (``--runtime_strategy``), as the predict stage does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from geoloc_tf import prediction_tables
from geoloc_tf.errors import EvaluationError, RetrievalError, first_line
from geoloc_tf.retrieval.config import AnnConfig, IndexConfig
from geoloc_tf.retrieval.search import DEFAULT_BLOCK_ROWS, nearest, squared_norms
from geoloc_tf.run_layout import RunLayout
from mesh.atomic import atomic_dir, write_text_atomic
from mesh.integrity import check_written, file_entry

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

INDEX_VERSION = 1
FEATURES_FILE = "features.npy"
NORMS_FILE = "sq_norms.npy"
PHOTOS_FILE = "photos.parquet"
META_FILE = "index.json"
BUILD_FILE = "build.json"


@dataclasses.dataclass(frozen=True)
class FeatureIndex:
    """An opened index: ``features`` and ``sq_norms`` are read-only memory maps."""

    root: Path
    meta: dict
    features: np.ndarray  # [n, d] float32
    sq_norms: np.ndarray  # [n] float32
    photos: pd.DataFrame  # photo_id, lat, lon [, record, offset], one row per feature row
    _ann: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def search(
        self, queries: np.ndarray, k: int, engine: str = "exact", ann: AnnConfig | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k indexed photos nearest to each query: (rows [q, k], L2 distances [q, k]),
        nearest first, distances exact whatever the engine.

        ``engine``: exact (``search.nearest``), faiss (``ann.search`` with the FAISS index in
        ``ann/``, read or built with ``ann``'s settings, default ``AnnConfig()``) or auto
        (``ann.resolve_engine``). With faiss a row of -1 (distance inf) marks a neighbour not
        found (fewer than k photos in the scanned cells)."""
        from geoloc_tf.retrieval import ann as ann_engine

        queries = np.ascontiguousarray(np.asarray(queries, np.float32))
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise RetrievalError(
                f"{self.root}: queries of shape {queries.shape}; expected "
                f"[q, {self.dim}] features of the model that built the index"
            )
        if ann_engine.resolve_engine(engine, len(self)) == "exact" or not len(self) or not len(queries):
            return nearest(self.features, queries, k, index_sq_norms=self.sq_norms)
        ann = ann or AnnConfig()
        return ann_engine.search(self.ann_index(ann), self, queries, min(k, len(self)), ann)

    def ann_index(self, ann: AnnConfig | None = None):
        """The FAISS index of this folder for ``ann``'s settings (``ann.open_or_build``), kept
        open for the next search."""
        from geoloc_tf.retrieval import ann as ann_engine

        ann = ann or AnnConfig()
        key = json.dumps(ann.build_key(), sort_keys=True)
        if key not in self._ann:
            self._ann.clear()
            self._ann[key] = ann_engine.open_or_build(self, ann)
        return self._ann[key]

    def record_paths(self) -> list[Path]:
        """The TFRecord files that ``photos.record`` points into (empty for an index written
        from arrays)."""
        root = Path(self.meta.get("data_root", ""))
        return [root / name for name in self.meta.get("record_files", [])]

    @classmethod
    def open(cls, path: str | os.PathLike) -> "FeatureIndex":
        """Opens an index written by ``write`` or ``build_index`` and checks it whole before any
        search (``mesh.integrity``): ``index.json`` is JSON with its fields; each file has the size
        and SHA-256 recorded in ``index.json`` when written (an index written before checksums is
        accepted with a warning); the arrays have the shapes and dtypes ``index.json`` says; every
        feature row is finite.

        Non-finite features are refused, not left out: a NaN row is at distance NaN from every
        query and sorts anywhere, and leaving rows out would silently change what `geoloc search`
        and the "M1 kNN" row answer; features of NaN come from a diverged model or a damaged file,
        and either calls for a new index. Checked on the squared norms (NaN or inf exactly where
        the row is, and tied to ``features.npy`` by both checksums), so no pass over the features.
        Any failure is one ``RetrievalError`` or ``WrittenFileError`` line naming the file."""
        root = Path(path)
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise RetrievalError(
                f"{root}: no {META_FILE}; expected an index written by `geoloc index` (FeatureIndex.write)"
            )
        meta = _read_meta(meta_path)
        files = meta.get("files")
        for name in (FEATURES_FILE, NORMS_FILE, PHOTOS_FILE):
            if files is not None and name not in files:
                raise RetrievalError(f"{meta_path}: 'files' lacks {name!r}; {REBUILD}")
            check_written(root / name, None if files is None else files[name], REBUILD)
        n, d = meta["count"], meta["dim"]
        features = _load_npy(root / FEATURES_FILE, (n, d))
        sq_norms = _load_npy(root / NORMS_FILE, (n,))
        photos = _read_photos(root / PHOTOS_FILE, n)
        bad = np.flatnonzero(~np.isfinite(sq_norms))
        if bad.size:
            raise RetrievalError(
                f"{root / FEATURES_FILE}: {bad.size} of {n} rows hold NaN or inf features (first: row "
                f"{bad[0]}, photo {photos['photo_id'].iloc[bad[0]]!r}); the model that made them "
                f"diverged or the file is damaged: {REBUILD} from a model whose features are finite"
            )
        return cls(root, meta, features, sq_norms, photos)

    @staticmethod
    def write(
        path: str | os.PathLike,
        features: np.ndarray,
        photo_ids,
        lat,
        lon,
        *,
        records: pd.DataFrame | None = None,
        meta: dict | None = None,
    ) -> "FeatureIndex":
        """Writes an index of in-memory (or memory-mapped) ``features`` [n, d] atomically.

        ``records``: optional ``record``/``offset`` columns (where each photo's TFRecord lies);
        ``meta``: extra ``index.json`` entries (model, split, data root, record files).
        """
        features = np.asarray(features, np.float32)
        if features.ndim != 2:
            raise RetrievalError(f"{path}: features of shape {features.shape}; expected [n, d]")
        photos = _photos_table(photo_ids, lat, lon, records, len(features), path)
        with atomic_dir(path) as folder:
            tmp = Path(folder)
            _save_npy(tmp / FEATURES_FILE, features)
            _save_npy(tmp / NORMS_FILE, squared_norms(features))
            _finish(tmp, photos, features.shape, meta or {})
        return FeatureIndex.open(path)


REBUILD = "rebuild the index with `geoloc index` (or the predict stage with --predict_store_features)"


def _read_meta(path: Path) -> dict:
    """``index.json``: a JSON object of this format version with a count and width."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RetrievalError(f"{path}: not readable JSON ({first_line(error)}); {REBUILD}") from None
    if not isinstance(meta, dict):
        raise RetrievalError(f"{path}: a JSON {type(meta).__name__}; expected an object; {REBUILD}")
    if meta.get("format_version") != INDEX_VERSION:
        raise RetrievalError(
            f"{path}: format_version {meta.get('format_version')!r}; this geoloc reads {INDEX_VERSION}"
        )
    for field in ("count", "dim"):
        value = meta.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RetrievalError(f"{path}: {field} {value!r}; expected a whole number >= 0; {REBUILD}")
    if "files" in meta and not isinstance(meta["files"], dict):
        raise RetrievalError(f"{path}: files {meta['files']!r}; expected an object per file; {REBUILD}")
    return meta


def _load_npy(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of ``shape`` from a ``.npy`` file, memory-mapped."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise RetrievalError(f"{path}: not a readable .npy array ({first_line(error)}); {REBUILD}") from None
    if array.shape != shape or array.dtype != np.float32:
        raise RetrievalError(
            f"{path}: {list(array.shape)} {array.dtype}; expected {list(shape)} float32 as "
            f"{META_FILE} says; {REBUILD}"
        )
    return array


def _read_photos(path: Path, n: int) -> pd.DataFrame:
    """The photo table: ``n`` rows with ``photo_id``, ``lat``, ``lon`` (finite degrees)."""
    try:
        photos = pd.read_parquet(path)
    except (OSError, ValueError, EOFError) as error:
        raise RetrievalError(
            f"{path}: not a readable Parquet table ({first_line(error)}); {REBUILD}"
        ) from None
    missing = [c for c in ("photo_id", "lat", "lon") if c not in photos.columns]
    if missing or len(photos) != n:
        raise RetrievalError(
            f"{path}: {len(photos)} rows, columns {list(photos.columns)}; expected {n} rows as "
            f"{META_FILE} says with photo_id, lat, lon; {REBUILD}"
        )
    lat, lon = photos["lat"].to_numpy(np.float64), photos["lon"].to_numpy(np.float64)
    if n and not (np.isfinite(lat).all() and np.isfinite(lon).all()):
        raise RetrievalError(f"{path}: non-finite lat/lon; {REBUILD}")
    return photos


def _photos_table(photo_ids, lat, lon, records: pd.DataFrame | None, n: int, where) -> pd.DataFrame:
    photos = pd.DataFrame(
        {
            "photo_id": np.asarray(photo_ids).astype(str),
            "lat": np.asarray(lat, np.float64),
            "lon": np.asarray(lon, np.float64),
        }
    )
    if records is not None:
        photos["record"] = np.asarray(records["record"], np.int32)
        photos["offset"] = np.asarray(records["offset"], np.int64)
    if len(photos) != n:
        raise RetrievalError(
            f"{where}: {len(photos)} photo ids/locations for {n} feature rows; expected one per row"
        )
    return photos


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def _finish(tmp: Path, photos: pd.DataFrame, shape: tuple[int, int], meta: dict) -> None:
    """Writes the photo table and index.json into the index folder being built, ``tmp``;
    ``index.json`` records the size and SHA-256 of every other file (``mesh.integrity``), checked
    by ``FeatureIndex.open``."""
    photos.to_parquet(tmp / PHOTOS_FILE, index=False)
    info = {
        "format_version": INDEX_VERSION,
        "count": int(shape[0]),
        "dim": int(shape[1]),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
        "files": {name: file_entry(tmp / name) for name in (FEATURES_FILE, NORMS_FILE, PHOTOS_FILE)},
    }
    (tmp / META_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def read_features(path: str | os.PathLike, column: str = "features") -> np.ndarray:
    """float32 [n, d] from a Parquet list column (a prediction part's ``features``), without a
    Python loop over rows; every row must hold d values."""
    try:
        table = prediction_tables.read_arrow(path, [column])
    except EvaluationError as error:
        raise RetrievalError(
            f"{error}; expected M1's prediction parts with features (PredictConfig.store_features)"
        ) from None
    array = table.column(column).combine_chunks()
    n = len(array)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    if array.null_count:
        raise RetrievalError(
            f"{path}: {array.null_count} rows without {column!r}; expected features for every photo"
        )
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), np.int64)
    lengths = np.diff(offsets)
    if (lengths != lengths[0]).any() or lengths[0] == 0:
        raise RetrievalError(
            f"{path}: {column!r} rows hold {lengths.min()}..{lengths.max()} "
            "values; expected the same feature width in every row"
        )
    values = array.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    return np.asarray(values, np.float32).reshape(n, int(lengths[0]))


def build_index(
    run_dir: str | os.PathLike,
    config: IndexConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> FeatureIndex:
    """Runs the run's M1 over ``config.split`` of its TFRecords and writes the index (see module
    doc); ``out_dir`` defaults to the run's index of that split. ``strategy``: where
    M1 runs (``predict_records.placement``: a tf.distribute strategy on the TensorFlow backend, a
    keras distribution on JAX; None: one device); on several workers each predicts its own record
    shards and the chief writes the index.

    Resumable: parts of finished record shards stay in ``.<out name>.build/`` next to the index
    until the index is whole; a rerun with the same run, model and split keeps them.
    """
    from data_pipelines.dataset import load
    from geoloc_tf.m1.predict_records import Replicas, predict_parts, replicated_forward, wait_for
    from geoloc_tf.run_configs import PredictConfig

    config = config or IndexConfig()
    split = config.split
    run_dir = Path(run_dir).resolve()
    layout = RunLayout(run_dir)
    model_path = layout.m1_model
    if not model_path.is_file():
        raise RetrievalError(
            f"--model={run_dir}: no {model_path}; expected a run directory whose m1 stage has finished"
        )
    data = load(str(layout.data_dir))
    final = Path(out_dir) if out_dir is not None else layout.index_dir(split)
    replicas = Replicas.of(strategy)
    model = replicas.load(model_path)
    build = {
        **index_meta(model_path, data, split, int(model.input_shape[1])),
        "model_mtime_ns": model_path.stat().st_mtime_ns,
    }
    work = final.parent / f".{final.name}.build"
    if replicas.chief:  # another worker finds the build folder the chief made
        _check_build(work, build)
    features_only = PredictConfig(top_k=1, store_features=True)
    forward = replicated_forward(model, features_only, replicas)
    started = time.monotonic()
    parts = predict_parts(
        forward, data, split, work / "parts", features_only, build["image_size"], config.batch_size
    )
    log.info(
        "index %s: M1 features of %d record shards in %.0f s", split, len(parts), time.monotonic() - started
    )
    if not replicas.chief:
        wait_for([final / META_FILE], f"index {split}: the chief's index")
        return FeatureIndex.open(final)
    index = assemble_index(parts, final, build)
    shutil.rmtree(work)
    return prepare_engine(index, config)


def prepare_engine(index: FeatureIndex, config: IndexConfig) -> FeatureIndex:
    """Builds (or keeps, when it is current) the FAISS index of ``index``'s folder when
    ``config.engine`` calls for it at this size (``ann.resolve_engine``), so that the first search
    does not pay for it; an exact index needs nothing more."""
    from geoloc_tf.retrieval.ann import resolve_engine

    if len(index) and resolve_engine(config.engine, len(index)) == "faiss":
        index.ann_index(config.ann)
    return index


def index_meta(model_path: str | os.PathLike, data, split: str, image_size: int) -> dict:
    """``index.json``'s entries for an index of ``split`` of the run's data set ``data`` made by
    the M1 at ``model_path``: where its photos' records lie, for the query sheet."""
    return {
        "model": str(model_path),
        "split": split,
        "data_root": str(Path(data.root).resolve()),
        "record_files": [os.path.relpath(f, data.root) for f in data.shard_paths(split)],
        "image_size": int(image_size),
    }


def _check_build(work: Path, build: dict) -> None:
    """Keeps the finished parts of an earlier build only if it used the same model and split."""
    path = work / BUILD_FILE
    if path.is_file() and json.loads(path.read_text()) != build:
        log.warning("%s: an unfinished build of another model or split; starting again", work)
        shutil.rmtree(work)
    if not path.is_file():
        work.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(build, indent=2, sort_keys=True) + "\n")


def assemble_index(parts: list[Path], final: str | os.PathLike, meta: dict) -> FeatureIndex:
    """Joins per-shard prediction parts (``m1.predict_records.predict_parts`` with features, one per record
    shard in shard order) into the index ``final``, one part in memory at a time. ``meta``:
    ``index_meta``'s entries."""
    counts = [pq.ParquetFile(part).metadata.num_rows for part in parts]
    n = int(sum(counts))
    first = next((p for p, c in zip(parts, counts) if c), None)
    d = read_features(first).shape[1] if first is not None else 0
    with atomic_dir(final) as folder:
        tmp = Path(folder)
        features = np.lib.format.open_memmap(tmp / FEATURES_FILE, mode="w+", dtype=np.float32, shape=(n, d))
        frames, row = [], 0
        for record, (part, count) in enumerate(zip(parts, counts)):
            features[row : row + count] = read_features(part) if count else 0
            frame = prediction_tables.read_frame(part, ["photo_id", "lat", "lon"])
            frame["record"] = np.int32(record)
            frame["offset"] = np.arange(count, dtype=np.int64)  # record order within the shard
            frames.append(frame)
            row += count
        features.flush()
        norms = squared_norms(features, DEFAULT_BLOCK_ROWS)
        del features
        _save_npy(tmp / NORMS_FILE, norms)
        photos = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame({"photo_id": [], "lat": [], "lon": [], "record": [], "offset": []})
        )
        photos = _photos_table(photos["photo_id"], photos["lat"], photos["lon"], photos, n, final)
        meta = {k: meta[k] for k in ("model", "split", "data_root", "record_files", "image_size")}
        _finish(tmp, photos, (n, d), meta)
    log.info("index %s: %d photos x %d features -> %s", meta["split"], n, d, final)
    return FeatureIndex.open(final)
