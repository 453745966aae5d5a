"""Stored prediction tables as the evaluation reads them: one per model and split.

Every model (M1, M2, M3, user and album averaging) writes the same Parquet columns
(``geoloc_tf.m1.predict_records``): ``photo_id, user_hash, posted_at, lat, lon, outdoor_prob, top_ids,
top_probs, top10_mass``. The evaluation needs only the metadata and the predicted cell, which is
``top_ids[0]`` (the best cell; averaging tables may have k = 1), read without unpacking the whole
list column. A point table (``prediction_tables.POINT_COLUMNS``: the kNN estimate, which is a
place, not a cell) gives ``pred_lat``/``pred_lon`` instead, and ``cell`` is -1. Tables are found
from a dict model -> path or from the run-directory layout ``predictions/<model>/<split>.parquet``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from geoloc_tf.errors import EvaluationError
from geoloc_tf.prediction_tables import FALLBACK_COLUMN, POINT_COLUMNS, read_arrow

#: Columns the evaluation reads.
COLUMNS: tuple[str, ...] = ("photo_id", "user_hash", "posted_at", "lat", "lon", "outdoor_prob", "top_ids")

#: Display names of the models the runner writes (Tables 6-7's wording), in report order. Models not
#: listed here keep their folder name and come after these.
MODEL_NAMES: dict[str, str] = {
    "m1": "Inception (M1)",
    "m1_knn": "M1 kNN",
    "m1_cell_retrieval": "M1 Cell Retrieval",
    "m2": "Time Inputs (M2)",
    "user_averaging": "User Averaging",
    "user_avg": "User Averaging",
    "album_averaging": "Album Averaging",
    "album_avg": "Album Averaging",
    "m3": "User Albums Time Inputs (M3)",
}


@dataclasses.dataclass(frozen=True)
class ModelPredictions:
    """One model's predictions on one split, as arrays (one entry per photo, table order)."""

    model: str
    photo_id: NDArray[np.object_]
    user_hash: NDArray[np.object_]
    posted_at: NDArray[np.int64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    outdoor_prob: NDArray[np.float32]
    cell: NDArray[np.int64]  # predicted cell, top_ids[:, 0]; -1 where a row has no ids
    source: str = ""
    pred_lat: NDArray[np.float64] | None = None  # point tables only: the predicted place
    pred_lon: NDArray[np.float64] | None = None
    fallback: NDArray[np.bool_] | None = None  # point tables with FALLBACK_COLUMN: a fallback point

    def __len__(self) -> int:
        return int(self.cell.size)

    @property
    def is_point(self) -> bool:
        """True for a point prediction (a place, not a cell: no class, no label point)."""
        return self.pred_lat is not None

    def take(self, rows: NDArray[np.int64]) -> "ModelPredictions":
        """The same predictions restricted to ``rows`` (in that order)."""
        return dataclasses.replace(self, **{name: getattr(self, name)[rows] for name in _array_fields(self)})


def _array_fields(pred: ModelPredictions) -> list[str]:
    """The per-photo array fields that ``pred`` has (point fields only for point tables)."""
    return [
        f.name
        for f in dataclasses.fields(pred)
        if f.name not in ("model", "source") and getattr(pred, f.name) is not None
    ]


def display_name(model: str) -> str:
    """The paper's name of a model folder (``MODEL_NAMES``), else the folder name."""
    return MODEL_NAMES.get(model, model)


def model_order(models: list[str]) -> list[str]:
    """Known models in the paper's order, then the others alphabetically."""
    known = list(dict.fromkeys(MODEL_NAMES))
    return sorted(models, key=lambda m: (known.index(m) if m in known else len(known), m))


def read_prediction_table(path: str | os.PathLike, model: str) -> ModelPredictions:
    """Read the columns the evaluation needs from one prediction table (see module docstring)."""
    path = os.fspath(path)
    try:
        table = read_arrow(path, list(COLUMNS))
    except EvaluationError as error:
        raise EvaluationError(f"model {model!r}: {error}") from None
    point = set(POINT_COLUMNS) <= set(table.column_names)

    def col(name: str, dtype) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=dtype)

    cell = np.full(table.num_rows, -1, np.int64) if point else _first_ids(table.column("top_ids"))
    fallback = None
    if point and FALLBACK_COLUMN in pq.read_schema(path).names:
        flags = read_arrow(path, [FALLBACK_COLUMN]).column(FALLBACK_COLUMN)
        fallback = np.asarray(flags.to_numpy(zero_copy_only=False), dtype=bool)
    return ModelPredictions(
        model=model,
        photo_id=col("photo_id", object),
        user_hash=col("user_hash", object),
        posted_at=col("posted_at", np.int64),
        lat=col("lat", np.float64),
        lon=col("lon", np.float64),
        outdoor_prob=col("outdoor_prob", np.float32),
        cell=cell,
        source=path,
        pred_lat=col("pred_lat", np.float64) if point else None,
        pred_lon=col("pred_lon", np.float64) if point else None,
        fallback=fallback,
    )


def _first_ids(top: "pa.ChunkedArray") -> NDArray[np.int64]:
    """``top_ids[i][0]`` of every row from the list column's offsets (no per-row unpacking);
    -1 for an empty or null list."""
    arr = top.combine_chunks() if top.num_chunks != 1 else top.chunk(0)
    if len(arr) == 0:
        return np.zeros(0, np.int64)
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=np.int64)
    lengths = offsets[1:] - offsets[:-1]
    if values.size == 0:
        return np.full(len(arr), -1, np.int64)
    first = values[np.minimum(offsets[:-1], values.size - 1)]
    valid = lengths > 0
    if arr.null_count:
        valid &= ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return np.where(valid, first, -1).astype(np.int64)


def discover_prediction_tables(run_dir: str | os.PathLike, split: str) -> dict[str, str | list[str]]:
    """``{model: path}`` for every ``run_dir/predictions/<model>/<split>.parquet`` that exists,
    in report order (M1, M2, averaging, M3, others): M2/M3 rows appear only when their tables do.

    A split expression ``a+b`` (e.g. ``m23_train+m23_val``, all of M1's validation photos, as in
    Tables 3-4) gives ``{model: [path_a, path_b]}`` for the models that have every part.
    """
    from geoloc_tf.run_layout import RunLayout

    found = {
        model: str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]
        for model, paths in RunLayout(run_dir).prediction_tables(split).items()
    }
    return {m: found[m] for m in model_order(list(found))}


def read_prediction_tables(paths: Sequence[str | os.PathLike], model: str) -> ModelPredictions:
    """Several tables of one model (e.g. the parts of a split expression) as one, in the given order."""
    parts = [read_prediction_table(p, model) for p in paths]
    if len(parts) == 1:
        return parts[0]
    fields = _array_fields(parts[0])
    if any(_array_fields(p) != fields for p in parts):
        raise EvaluationError(
            f"model {model!r}: {', '.join(p.source for p in parts)} mix point and "
            "cell prediction tables; expected one kind"
        )
    return ModelPredictions(
        model=model,
        source="+".join(p.source for p in parts),
        **{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields},
    )


def load_predictions(
    tables: Mapping[str, str | os.PathLike | Sequence[str | os.PathLike]],
) -> dict[str, ModelPredictions]:
    """Read every table of ``{model: path or [paths]}``; keeps the report order."""
    if not tables:
        raise EvaluationError(
            "no prediction tables to evaluate; expected predictions/<model>/<split>.parquet"
        )
    out = {}
    for m in model_order(list(tables)):
        paths = tables[m]
        out[m] = read_prediction_tables([paths] if isinstance(paths, (str, os.PathLike)) else paths, m)
    return out


def paired_rows(a: ModelPredictions, b: ModelPredictions) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Row indices (in ``a``, in ``b``) of the photos present in both tables, matched by photo_id.

    Tables of one split written by the same pipeline are in the same order; that common case costs
    one array comparison.
    """
    if len(a) == len(b) and np.array_equal(a.photo_id, b.photo_id):
        rows = np.arange(len(a), dtype=np.int64)
        return rows, rows
    import pandas as pd

    index_b = pd.Index(b.photo_id)
    if not index_b.is_unique:
        raise EvaluationError(f"{b.source}: photo_id is not unique; expected one row per photo")
    in_b = index_b.get_indexer(a.photo_id)
    rows_a = np.flatnonzero(in_b >= 0).astype(np.int64)
    return rows_a, in_b[rows_a].astype(np.int64)
