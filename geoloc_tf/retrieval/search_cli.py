"""`geoloc search`: the indexed photos nearest to a query image in M1's feature space.

    geoloc search IMAGE --index=DIR [--k=6] [--sheet=OUT.png] [--format=table|json]
                        [--lat=LAT --lon=LON] [--model=RUN_DIR]

Query by example (paper appendix B, Figure 4): M1's penultimate features of IMAGE, then the k
indexed photos nearest by L2 distance (exact search, ``search.nearest``), printed as a table (or
JSON) with their distances and locations. With the query's true location (``--lat``/``--lon``)
each neighbour also gets its great-circle distance from it. ``--sheet`` draws the Figure 4 sheet.
The model defaults to the run that built the index.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mesh.geodesy import great_circle_km


def search_image(index, model, image: bytes, k: int, lat: float | None = None,
                 lon: float | None = None) -> pd.DataFrame:
    """The k nearest indexed photos of one query image: rank, row, photo_id, distance (L2 of M1
    features), lat, lon, km_from_query (NaN without the query's location)."""
    rows, distances = index.search(model.features([image]), k)
    photos = index.photos.iloc[rows[0]]
    known = lat is not None and lon is not None
    return pd.DataFrame({
        "rank": np.arange(1, len(rows[0]) + 1), "row": rows[0],
        "photo_id": photos["photo_id"].to_numpy(), "distance": distances[0].astype(np.float64),
        "lat": photos["lat"].to_numpy(), "lon": photos["lon"].to_numpy(),
        "km_from_query": (great_circle_km(lat, lon, photos["lat"].to_numpy(),
                                          photos["lon"].to_numpy())
                          if known else np.full(len(rows[0]), np.nan))})


def format_table(result: pd.DataFrame) -> str:
    """The neighbours as an aligned text table (the default output)."""
    lines = [f"{'rank':>4}  {'photo_id':<20} {'L2 distance':>11} {'lat':>9} {'lon':>10} "
             f"{'km from query':>13}"]
    for r in result.itertuples():
        km = "-" if math.isnan(r.km_from_query) else f"{r.km_from_query:,.1f}"
        lines.append(f"{r.rank:>4}  {r.photo_id:<20} {r.distance:>11.4f} {r.lat:>9.4f} "
                     f"{r.lon:>10.4f} {km:>13}")
    return "\n".join(lines)


def to_json(result: pd.DataFrame, image: str, index_dir: str, lat: float | None,
            lon: float | None) -> str:
    neighbours = [{"rank": int(r.rank), "photo_id": r.photo_id, "distance": float(r.distance),
                   "lat": float(r.lat), "lon": float(r.lon),
                   "km_from_query": None if math.isnan(r.km_from_query) else float(r.km_from_query)}
                  for r in result.itertuples()]
    return json.dumps({"query": {"image": image, "lat": lat, "lon": lon}, "index": index_dir,
                       "k": len(neighbours), "neighbours": neighbours}, indent=2)


def _model_dir(index, model: str | None) -> Path:
    if model:
        return Path(model)
    if "model" not in index.meta:
        from geoloc_tf.errors import RetrievalError

        raise RetrievalError(f"{index.root}: the index does not name its model; pass "
                             "--model=RUN_DIR (the run whose M1 made the features)")
    from geoloc_tf.run_layout import RunLayout

    return RunLayout.of_model_file(index.meta["model"]).root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoloc search", description=__doc__.split("\n\n")[0])
    parser.add_argument("image", help="query image (JPEG, PNG, GIF or BMP)")
    parser.add_argument("--index", required=True, help="index directory written by geoloc index")
    parser.add_argument("--k", type=int, default=6, help="neighbours to return (Figure 4: 6)")
    parser.add_argument("--model", default=None,
                        help="run directory of M1 (default: the run that built the index)")
    parser.add_argument("--sheet", default=None, help="draw the query sheet to this PNG")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--lat", type=float, default=None, help="the query's true latitude")
    parser.add_argument("--lon", type=float, default=None, help="the query's true longitude")
    args = parser.parse_args(argv)
    if (args.lat is None) != (args.lon is None):
        parser.error("--lat and --lon go together: give both or neither")
    if args.k < 1:
        parser.error(f"--k={args.k}; expected >= 1")
    from geoloc_tf.errors import GeolocTfError
    from geoloc_tf.inference.m1_model import M1Model, read_image_bytes
    from geoloc_tf.retrieval.feature_index import FeatureIndex

    try:
        index = FeatureIndex.open(args.index)
        image = read_image_bytes(args.image)
        model = M1Model.load(_model_dir(index, args.model))
        result = search_image(index, model, image, args.k, args.lat, args.lon)
        if args.sheet:
            from geoloc_tf.retrieval.sheet import draw_query_sheet, record_images

            draw_query_sheet(image, result, record_images(index, result["row"].to_numpy()),
                             args.sheet, title=f"{Path(args.image).name}: {len(result)} nearest "
                             f"of {len(index):,} indexed photos (L2 distance of M1 features)")
    except (GeolocTfError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(to_json(result, args.image, args.index, args.lat, args.lon))
    else:
        print(format_table(result))
    if args.sheet:
        print(f"sheet: {args.sheet}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
