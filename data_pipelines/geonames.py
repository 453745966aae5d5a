"""Offline reverse geocoding: the GeoNames place nearest to a point, with its administrative areas.

The one use of ``reverse_geocoder`` (1.5.1) in geoloc: the demo's OSV-5M and MP16-Pro layouts take
their admin columns from it (as OSV-5M made its own), and the evaluation's country / region /
sub-region / city accuracy (``geoloc_tf.evaluation.admin``) geocodes predicted and true points
with it. It ships GeoNames' cities1000 (every place of over 1000 people, with its first- and
second-level divisions) inside the package and works offline; the nearest place is found in a k-d
tree over latitude/longitude degrees, as the package itself does (not on the sphere).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: What each returned column is, in GeoNames' field names: country ISO code, first-level division,
#: second-level division, place name.
FIELDS: tuple[str, ...] = ("cc", "admin1", "admin2", "name")


@functools.lru_cache(maxsize=1)
def places() -> tuple[Any, NDArray[np.object_]]:
    """The geocoder's k-d tree over [lat, lon] degrees and its places' (num_places, 4) names in
    ``FIELDS`` order; loaded once per process (about 1-2 s), single-process tree (mode 1: no pool)."""
    import reverse_geocoder

    geocoder = reverse_geocoder.RGeocoder(mode=1, verbose=False)
    names = np.asarray([[loc[f] for f in FIELDS] for loc in geocoder.locations], dtype=object)
    return geocoder.tree, names


def reverse_geocode(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.object_]:
    """(n, 4) names (``FIELDS``) of the place nearest to each point in degrees; a point that is NaN
    (no prediction) gets "" in every column."""
    lat_a = np.asarray(lat, dtype=np.float64).reshape(-1)
    lon_a = np.asarray(lon, dtype=np.float64).reshape(-1)
    out = np.full((lat_a.size, len(FIELDS)), "", dtype=object)
    ok = np.isfinite(lat_a) & np.isfinite(lon_a)
    if ok.any():
        tree, names = places()
        _, index = tree.query(np.column_stack([lat_a[ok], lon_a[ok]]), k=1)
        out[ok] = names[np.asarray(index, dtype=np.int64).reshape(-1)]
    return out
