"""Per-photo prediction tables: the one format every model's predictions are stored in.

M1 (`geoloc_tf.m1.predict_records`), M2, M3 and the averaging baselines all write
`run_dir/predictions/<model>/<split>.parquet` with the same columns, so the evaluation treats every
model alike, M2's and M3's in the same columnar form as M1's:

| column | meaning |
|---|---|
| photo_id, user_hash, posted_at, lat, lon, outdoor_prob | the photo's kept metadata |
| top_ids (list of int32), top_probs (list of float32) | the model's k most probable cells, best first |
| top10_mass | sum of the 10 largest probabilities (Figure 3's |p0|) |

A predictor that gives a place rather than a cell (the kNN estimate, `geoloc_tf.retrieval.knn`)
writes a *point table* instead: the metadata columns plus `pred_lat`, `pred_lon` (degrees, NaN when
it has no estimate) and no top-k columns; the evaluation scores it by the distance from that point.
A point table may flag the photos whose point is a fallback rather than the predictor's own
(``FALLBACK_COLUMN``, bool: retrieval inside the top cells that found no photo there and gave the
top cell's label point); the report counts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geoloc_tf.m2.config import DEFAULT_TOP_K
from mesh.atomic import write_atomic

METADATA_COLUMNS = ("photo_id", "user_hash", "posted_at", "lat", "lon", "outdoor_prob")
#: The columns of a prediction table of cells.
TABLE_COLUMNS = METADATA_COLUMNS + ("top_ids", "top_probs", "top10_mass")
MASS_K = DEFAULT_TOP_K  # Figure 3: the top-10 entries
POINT_COLUMNS = ("pred_lat", "pred_lon")
#: Optional bool column of a point table: the photo's point is a fallback (module docstring).
FALLBACK_COLUMN = "retrieval_fallback"


def table_from_top_k(
    metadata: pd.DataFrame, top_ids: np.ndarray, top_probs: np.ndarray, top10_mass: np.ndarray | None = None
) -> pd.DataFrame:
    """A prediction table: the photos' metadata columns plus their top-k cells (best first)."""
    top_ids = np.asarray(top_ids, np.int32)
    top_probs = np.asarray(top_probs, np.float32)
    if len(top_ids) != len(metadata) or top_ids.shape != top_probs.shape:
        raise ValueError(
            f"top-k arrays {top_ids.shape}/{top_probs.shape} do not match {len(metadata)} photos"
        )
    frame = metadata[list(METADATA_COLUMNS)].reset_index(drop=True).copy()
    frame["top_ids"] = list(top_ids)
    frame["top_probs"] = list(top_probs)
    frame["top10_mass"] = (
        top_probs[:, :MASS_K].sum(axis=1) if top10_mass is None else np.asarray(top10_mass)
    ).astype(np.float32)
    return frame


def table_from_points(metadata: pd.DataFrame, pred_lat: np.ndarray, pred_lon: np.ndarray) -> pd.DataFrame:
    """A point table: the photos' metadata columns plus one predicted location each (degrees)."""
    pred_lat, pred_lon = np.asarray(pred_lat, np.float64), np.asarray(pred_lon, np.float64)
    if pred_lat.shape != (len(metadata),) or pred_lon.shape != (len(metadata),):
        raise ValueError(
            f"predicted points {pred_lat.shape}/{pred_lon.shape} do not match {len(metadata)} photos"
        )
    frame = metadata[list(METADATA_COLUMNS)].reset_index(drop=True).copy()
    frame["pred_lat"], frame["pred_lon"] = pred_lat, pred_lon
    return frame


def write_table(frame: pd.DataFrame, path: Path | str) -> Path:
    """Writes a prediction table atomically (a reader never sees half a file)."""
    path = Path(path)
    write_atomic(path, lambda f: frame.to_parquet(f, index=False))
    return path


def read_arrow(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """The one reader of a stored prediction table: all columns, or ``columns``; a point table
    (``POINT_COLUMNS``) is read without the top-k columns it lacks. Raises EvaluationError naming
    the file when it is missing or lacks a column."""
    from geoloc_tf.errors import EvaluationError

    try:
        if columns is not None and set(POINT_COLUMNS) <= set(pq.read_schema(path).names):
            columns = [c for c in columns if c not in ("top_ids", "top_probs", "top10_mass")]
            columns += [c for c in POINT_COLUMNS if c not in columns]
        return pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise EvaluationError(f"{path}: no such prediction table") from None
    except (OSError, ValueError, KeyError) as error:
        raise EvaluationError(
            f"{path}: cannot read prediction table ({error}); expected the "
            f"columns {list(columns or METADATA_COLUMNS)} of "
            "geoloc_tf.prediction_tables"
        ) from None


def read_frame(path: Path | str, columns: list[str] | None = None) -> pd.DataFrame:
    """A stored prediction table (all columns, or ``columns``) as a DataFrame."""
    return read_arrow(path, columns).to_pandas()


def read_table(path: Path | str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(table, top_ids [n, k] int32, top_probs [n, k] float32) of a stored prediction table."""
    table = read_frame(path)
    if len(table) == 0:
        return table, np.zeros((0, 0), np.int32), np.zeros((0, 0), np.float32)
    return (
        table,
        np.stack(table["top_ids"].to_numpy()).astype(np.int32),
        np.stack(table["top_probs"].to_numpy()).astype(np.float32),
    )
