"""Query by example (paper appendix B, Figure 4), what `geoloc search` runs
(``experiments.commands.search``): M1's penultimate features of a query image, then the k indexed
photos nearest by L2 distance (``FeatureIndex.search`` with the configured engine), as a table or JSON with their
distances and locations. With the query's true location each neighbour also gets its great-circle
distance from it. The model defaults to the run that built the index (``model_dir``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_tf.retrieval.config import SearchConfig
from mesh.geodesy import great_circle_km


def search_image(
    index, model, image: np.ndarray, config: SearchConfig, lat: float | None = None, lon: float | None = None
) -> pd.DataFrame:
    """The ``config.k`` nearest indexed photos of one query image (``config.engine``): rank, row,
    photo_id, distance (L2 of M1 features), lat, lon, km_from_query (NaN without the query's
    location)."""
    rows, distances = index.search(model.features([image]), config.k, config.engine, config.ann)
    found = rows[0] >= 0
    rows, distances = rows[:, found], distances[:, found]
    photos = index.photos.iloc[rows[0]]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(rows[0]) + 1),
            "row": rows[0],
            "photo_id": photos["photo_id"].to_numpy(),
            "distance": distances[0].astype(np.float64),
            "lat": photos["lat"].to_numpy(),
            "lon": photos["lon"].to_numpy(),
            "km_from_query": (
                great_circle_km(lat, lon, photos["lat"].to_numpy(), photos["lon"].to_numpy())
                if lat is not None and lon is not None
                else np.full(len(rows[0]), np.nan)
            ),
        }
    )


def format_table(result: pd.DataFrame) -> str:
    """The neighbours as an aligned text table (the default output)."""
    lines = [
        f"{'rank':>4}  {'photo_id':<20} {'L2 distance':>11} {'lat':>9} {'lon':>10} {'km from query':>13}"
    ]
    for r in result.itertuples():
        km = "-" if math.isnan(r.km_from_query) else f"{r.km_from_query:,.1f}"
        lines.append(
            f"{r.rank:>4}  {r.photo_id:<20} {r.distance:>11.4f} {r.lat:>9.4f} {r.lon:>10.4f} {km:>13}"
        )
    return "\n".join(lines)


def to_json(result: pd.DataFrame, image: str, index_dir: str, lat: float | None, lon: float | None) -> str:
    neighbours = [
        {
            "rank": int(r.rank),
            "photo_id": r.photo_id,
            "distance": float(r.distance),
            "lat": float(r.lat),
            "lon": float(r.lon),
            "km_from_query": None if math.isnan(r.km_from_query) else float(r.km_from_query),
        }
        for r in result.itertuples()
    ]
    return json.dumps(
        {
            "query": {"image": image, "lat": lat, "lon": lon},
            "index": index_dir,
            "k": len(neighbours),
            "neighbours": neighbours,
        },
        indent=2,
    )


def model_dir(index, model: str | None) -> Path:
    """The run directory of the M1 that answers queries: ``model``, else the run that built the
    index."""
    if model:
        return Path(model)
    if "model" not in index.meta:
        from geoloc_tf.errors import RetrievalError

        raise RetrievalError(
            f"{index.root}: the index does not name its model; pass "
            "--model=RUN_DIR (the run whose M1 made the features)"
        )
    from geoloc_tf.run_layout import RunLayout

    return RunLayout.of_model_file(index.meta["model"]).root
