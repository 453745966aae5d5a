"""Table 6's "Best Possible" rows: the accuracy a perfect classifier would reach on a mesh.

Every held-out photo is given exactly its own cell, and its error is the great-circle distance
(§3.1.3) from the photo to that cell's label point -- the cell centroid or the imagery centroid
(§3.1.2). Accuracy is the percentage of photos within 1 / 25 / 200 / 750 / 2500 km. Reported over
photos in kept cells, and over all photos, where a photo in a dropped cell (which no classifier can
predict) is scored against the nearest label point of any kept cell. Mean and median errors match
Table 7's "Best Possible" columns; the mean GeoScore (``geodesy.geoscore``) sits beside them. The
Earth radius and threshold rule are the evaluation's (``geodesy``: the paper's by default).

``geoloc best-possible --mesh=DIR --coords=FILE.csv`` prints the table as JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from mesh.errors import MeshError
from mesh.geodesy import (
    ACCURACY_THRESHOLDS_KM,
    EARTH_RADIUS_KM,
    accuracy_at_thresholds,
    geoscore,
    great_circle_km,
)
from mesh.mesh import Mesh
from mesh.sphere import check_lat_lon, lat_lon_to_xyz


def best_possible(
    mesh: Mesh,
    lat: ArrayLike,
    lon: ArrayLike,
    thresholds_km: tuple[float, ...] = ACCURACY_THRESHOLDS_KM,
    radius_km: float = EARTH_RADIUS_KM,
    rule: str = "le",
) -> dict[str, Any]:
    """The best-possible table for held-out photos ``lat, lon`` (degrees); see module docstring."""
    lat_a, lon_a = check_lat_lon(lat, lon, "best_possible")
    if mesh.num_cells == 0:
        raise MeshError("best_possible: the mesh has no kept cells")
    cls = mesh.locate(lat_a, lon_a)
    kept = cls >= 0
    n, k = int(lat_a.size), int(kept.sum())
    rows = []
    for name, points in (
        ("cell centroid", mesh.cell_centroids),
        ("imagery centroid", mesh.imagery_centroids),
    ):
        d = np.empty(n)
        d[kept] = great_circle_km(
            lat_a[kept], lon_a[kept], points[cls[kept], 0], points[cls[kept], 1], radius_km
        )
        if k < n:
            tree = cKDTree(lat_lon_to_xyz(points[:, 0], points[:, 1]))
            _, nearest = tree.query(lat_lon_to_xyz(lat_a[~kept], lon_a[~kept]))
            d[~kept] = great_circle_km(
                lat_a[~kept], lon_a[~kept], points[nearest, 0], points[nearest, 1], radius_km
            )
        for over, sel in (("photos in kept cells", kept), ("all photos", np.ones(n, dtype=bool))):
            dd = d[sel]
            rows.append(
                {
                    "label_point": name,
                    "over": over,
                    "num_photos": int(dd.size),
                    "accuracy_percent": accuracy_at_thresholds(dd, thresholds_km, rule),
                    "mean_km": float(dd.mean()) if dd.size else float("nan"),
                    "median_km": float(np.median(dd)) if dd.size else float("nan"),
                    "geoscore": geoscore(dd),
                }
            )
    return {
        "num_photos": n,
        "num_in_kept_cells": k,
        "share_in_kept_cells_percent": 100.0 * k / n if n else float("nan"),
        "thresholds_km": list(thresholds_km),
        "num_cells": mesh.num_cells,
        "rows": rows,
    }
