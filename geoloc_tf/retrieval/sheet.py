"""The query sheet of query by example: the query and its nearest photos (paper Figure 4).

Figure 4 shows a query image and the six photos nearest to it in M1's feature space with their
L2 distances below them. The sheet adds what a reader of a geolocation result wants next to each
neighbour: its location and, when the query's true location is known, the great-circle distance
between the two (``mesh.geodesy.great_circle_km``).

A locations panel at the right maps the neighbours (numbered by rank) and the query's true
location (a star, when known) over the basemap (``mesh.plot.region_map``): around the points,
with the 1:50 m coastline when they lie within a region, or the whole world when they do not.

Neighbour images come from the TFRecords the index points into (``FeatureIndex.record_paths``,
``photos.record`` / ``photos.offset``); a neighbour whose record cannot be found (an index written
from arrays, or moved records) gets an empty tile that says so.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from geoloc_tf.retrieval.feature_index import FeatureIndex
from mesh.plot import extent_around, region_map, save_figure


def record_images(index: FeatureIndex, rows: np.ndarray) -> list[bytes | None]:
    """The stored JPEG of each index row in ``rows`` (None where the index has no record of it)."""
    import tensorflow as tf

    from data_pipelines import records

    paths = index.record_paths()
    if "record" not in index.photos.columns or not paths:
        return [None] * len(rows)
    spec = {"image": records.feature_spec(tf)["image"]}
    out: list[bytes | None] = []
    for row in np.asarray(rows, np.int64):
        path = paths[int(index.photos["record"].iat[row])]
        if not path.is_file():
            out.append(None)
            continue
        offset = int(index.photos["offset"].iat[row])
        record = next(iter(tf.data.TFRecordDataset(str(path)).skip(offset).take(1)), None)
        out.append(None if record is None else tf.io.parse_single_example(record, spec)["image"].numpy())
    return out


def draw_query_sheet(
    query_image: bytes,
    neighbours: pd.DataFrame,
    images: list[bytes | None],
    out: str | os.PathLike,
    title: str = "",
    query_lat: float | None = None,
    query_lon: float | None = None,
) -> Path:
    """Writes the sheet PNG atomically: the query, then one tile per row of ``neighbours``
    (columns rank, photo_id, distance, lat, lon and km_from_query, NaN when unknown), then the
    locations panel (``query_lat, query_lon``: the query's true location, when known)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiles = 1 + len(neighbours)
    figure, axes = plt.subplots(
        1,
        tiles + 1,
        figsize=(1.9 * tiles + 4.2, 3.0),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.0] * tiles + [2.4]},
    )
    _tile(axes[0, 0], query_image, "query", color="tab:blue")
    for ax, (_, n), data in zip(axes[0, 1:tiles], neighbours.iterrows(), images):
        text = f"#{n['rank']}  L2 {n['distance']:.3f}\n{n['lat']:.2f}, {n['lon']:.2f}"
        if np.isfinite(n["km_from_query"]):
            text += f"\n{n['km_from_query']:,.0f} km away"
        _tile(ax, data, text)
    _locations(axes[0, tiles], neighbours, query_lat, query_lon)
    figure.suptitle(
        title or "Query by example: nearest photos by L2 distance of M1 features (appendix B, Figure 4)",
        fontsize=8,
    )
    figure.tight_layout()
    save_figure(figure, out, dpi=110)
    return Path(out)


def _locations(ax, neighbours: pd.DataFrame, query_lat: float | None, query_lon: float | None) -> None:
    """The neighbours' locations, numbered by rank, and the query's (a star) on a map around them."""
    lat = neighbours["lat"].to_numpy(np.float64)
    lon = neighbours["lon"].to_numpy(np.float64)
    query = [] if query_lat is None or query_lon is None else [(query_lon, query_lat)]
    points = np.concatenate([np.stack([lon, lat], axis=1), np.asarray(query, np.float64).reshape(-1, 2)])
    region_map(ax, extent_around(points[:, 0], points[:, 1]) if len(points) else (-180.0, 180.0, -90.0, 90.0))
    ax.plot(lon, lat, "o", color="tab:red", markersize=5, markeredgecolor="white", linestyle="none")
    for rank, x, y in zip(neighbours["rank"], lon, lat):
        ax.annotate(str(rank), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6, color="tab:red")
    for query_point in query:
        ax.plot(*query_point, "*", color="tab:blue", markersize=11, markeredgecolor="white")
    ax.set_title("locations" + (" (star: the query)" if query else ""), fontsize=7)
    ax.tick_params(labelsize=6)
    ax.xaxis.label.set_fontsize(6)


def _tile(ax, data: bytes | None, text: str, color: str = "black") -> None:
    from PIL import Image

    ax.set_xticks([])
    ax.set_yticks([])
    if data is None:
        ax.text(0.5, 0.5, "image not\navailable", ha="center", va="center", fontsize=7)
    else:
        ax.imshow(Image.open(io.BytesIO(data)).convert("RGB"))
    ax.set_xlabel(text, fontsize=7, color=color)
