"""The standard test sets of photo geolocation and the published numbers of named systems on them.

``geoloc evaluate --benchmark=NAME`` (``experiments.commands.evaluate``) reads a test set with the
benchmark's columns, scores the run under the benchmark's convention and writes a "benchmark"
table: the run's rows beside the published rows of the data file ``published/published_results.csv``
(its README says where every number was checked and which were left out).

A benchmark knows:

- its CSV columns: the id, latitude and longitude columns it must have and the optional
  photographer column (Im2GPS / Im2GPS3k ``IMG_ID, AUTHOR, LAT, LON``; YFCC4k ``IMG_ID, OwnerNSID,
  LAT, LON``; OSV-5M ``id, latitude, longitude, ..., creator_id``). The data pipeline's CSV reader
  reads them (and undoes the swapped LAT/LON of one public Im2GPS3k copy);
- its photo count, as the set is distributed;
- its convention: the Earth radius, distance formula and threshold rule its reference numbers were
  computed under, and for OSV-5M the rule of its admin-level accuracy (the GeoEstimation family:
  haversine, R = 6371 km, d <= t, in GeoEstimation's own ``utils.py`` and
  ``classification/utils_global.py`` and in ``geo_classification/utils_eval.py`` of the SemP
  re-implementation; OSV-5M: haversine, R = 6371 km, d < t, in its ``metrics/utils.py`` and
  ``metrics/distance_based.py``, admin accuracy as its released code counts it).

The evaluation uses the benchmark's convention unless the user sets the radius, the rule or the
admin rule. Every published row then says whether it was computed under the run's convention:
"yes", "no" or "unknown", computed (``compare_convention``) from the convention the data file
records for the row (radius, threshold rule, distance kind and, where the row has admin-level
numbers, admin rule), never typed by hand; "unknown" where the source's code could not be read.
The run's rows carry 95 % intervals (``uncertainty``); the published rows none, as their sources
give none.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import io
import math
from collections.abc import Collection
from typing import Any

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation.admin import ADMIN_LEVELS
from geoloc_tf.evaluation.tables import (
    ADMIN_LEVEL_NAMES,
    GEOSCORE_COLUMN,
    Table,
    accuracy_values,
    admin_value,
    interval_note,
    summary_value,
    threshold_columns,
)
from geoloc_tf.run_configs import ADMIN_RULES, ExternalEvaluateConfig
from mesh.geodesy import ACCURACY_THRESHOLDS_KM, DISTANCE_FORMULA

#: The data file of published results (package data).
PUBLISHED_FILE = "published_results.csv"

#: Its accuracy columns, in ``ACCURACY_THRESHOLDS_KM`` order.
ACCURACY_FIELDS: tuple[str, ...] = tuple(f"acc_{t:g}km" for t in ACCURACY_THRESHOLDS_KM)

#: OSV-5M's admin-level accuracies (%), where published, in ``admin.ADMIN_LEVELS`` order.
ADMIN_FIELDS: tuple[str, ...] = tuple(f"{level}_acc" for level in ADMIN_LEVELS)

#: Every column of the data file.
PUBLISHED_COLUMNS: tuple[str, ...] = (
    "benchmark",
    "system",
    "paper",
    "year",
    *ACCURACY_FIELDS,
    "mean_km",
    "geoscore",
    *ADMIN_FIELDS,
    "earth_radius_km",
    "distance",
    "threshold_rule",
    "admin_rule",
    "source",
    "verified_at",
)

#: How the data file names the formula geoloc computes (``mesh.geodesy.DISTANCE_FORMULA``).
HAVERSINE = "haversine"
#: The geodesic on the WGS84 ellipsoid (``geopy.distance.geodesic``'s default), which GeoCLIP's
#: ``geoclip/train/eval.py`` and G3's ``IndexSearch.py`` measure. It differs from any sphere's
#: haversine by up to ~0.5 %, and geoloc does not compute it, so no run of geoloc shares it.
GEODESIC = "geodesic"
#: The distance kinds the data file may record.
DISTANCES: tuple[str, ...] = (HAVERSINE, GEODESIC)


def _sign(rule: str) -> str:
    return "<=" if rule == "le" else "<"


@dataclasses.dataclass(frozen=True)
class Convention:
    """How distances and accuracies are computed: sphere radius, threshold rule, distance kind and
    the rule of country / region / sub-region / city accuracy (``EvaluateConfig.admin_rule``)."""

    earth_radius_km: float
    threshold_rule: str  # "le": d <= t; "lt": d < t
    distance: str = HAVERSINE
    admin_rule: str = "geoloc"  # results written before the admin rule existed used geoloc's

    def describe(self, admin: bool = False) -> str:
        """In words; ``admin``: with the admin rule (a benchmark with admin-level accuracy)."""
        text = f"{self.distance}, Earth radius {self.earth_radius_km:g} km, an error counts when d {_sign(self.threshold_rule)} t"
        return text + (f", admin-level accuracy by the {self.admin_rule} rule" if admin else "")

    def same_as(self, other: "Convention", admin: bool) -> bool:
        """The same convention; the admin rule counts only where ``admin`` (the benchmark reports
        admin-level accuracy)."""
        return (
            math.isclose(self.earth_radius_km, other.earth_radius_km)
            and self.threshold_rule == other.threshold_rule
            and self.distance == other.distance
            and (not admin or self.admin_rule == other.admin_rule)
        )


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    photos: str  # the set's size as distributed, in words
    id_column: str
    lat_column: str
    lon_column: str
    user_column: str  # optional in the file: "" when the set names no photographers
    convention: Convention
    reference: str  # where the set comes from
    format: str = "csv"  # the collection format that reads it (``data_pipelines.readers.formats``)
    admin: bool = False  # its results include country / region / sub-region / city accuracy
    user_required: bool = False  # the reader needs the photographer column
    # Its photos are Flickr's: even bare numeric ids are Flickr photo ids (``data_pipelines.photo_identity``).
    flickr: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        user = (self.user_column,) if self.user_required else ()
        return (self.id_column, *user, self.lat_column, self.lon_column)

    @property
    def columns(self) -> str:
        """The header the benchmark expects, in words (an optional column in brackets)."""
        user = self.user_column if self.user_required else f"[{self.user_column}]"
        return f"{self.id_column}, {user}, {self.lat_column}, {self.lon_column}"


#: GeoEstimation and its re-implementation (haversine, R = 6371 km, d <= t).
GEOESTIMATION = Convention(6371.0, "le")
#: OSV-5M (haversine, R = 6371 km, d < t; admin accuracy as its released code counts it).
OSV5M = Convention(6371.0, "lt", admin_rule="osv5m")

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "im2gps",
            "Im2GPS",
            "237 photos",
            "IMG_ID",
            "LAT",
            "LON",
            "AUTHOR",
            GEOESTIMATION,
            "Hays & Efros 2008; CSV im2gps_places365.csv of GeoEstimation",
            flickr=True,
        ),
        Benchmark(
            "im2gps3k",
            "Im2GPS3k",
            "2,997 photos (GeoEstimation's im2gps3k_places365.csv, on which its published numbers were "
            "computed; Vo et al. distribute 3,000 images)",
            "IMG_ID",
            "LAT",
            "LON",
            "AUTHOR",
            GEOESTIMATION,
            "Vo et al. 2017; CSV im2gps3k_places365.csv of GeoEstimation (one public copy has LAT/LON "
            "swapped: the CSV reader detects it)",
            flickr=True,
        ),
        Benchmark(
            "yfcc4k",
            "YFCC4k",
            "4,536 photos",
            "IMG_ID",
            "LAT",
            "LON",
            "OwnerNSID",
            GEOESTIMATION,
            "Vo et al. 2017; a YFCC100M subset, CSV yfcc4k.csv",
            flickr=True,
        ),
        Benchmark(
            "yfcc26k",
            "YFCC26k (YFCC-Val26k)",
            "25,600 photos",
            "IMG_ID",
            "LAT",
            "LON",
            "AUTHOR",
            GEOESTIMATION,
            "Müller-Budack et al. 2018; CSV yfcc25600_places365.csv of GeoEstimation",
            flickr=True,
        ),
        Benchmark(
            "osv5m",
            "OpenStreetView-5M test split",
            "every row of test.csv",
            "id",
            "latitude",
            "longitude",
            "creator_id",
            OSV5M,
            "Astruc et al. 2024; test.csv of huggingface.co/datasets/osv5m/osv5m, its images "
            "in images/test/00.zip ... 04.zip under --images, read from the zips (or extracted, as "
            "<id>.jpg files); read by the osv5m collection format",
            format="osv5m",
            admin=True,
            user_required=True,
        ),
    )
}
BENCHMARK_NAMES: tuple[str, ...] = tuple(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; an unknown name is an error listing the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise EvaluationError(
            f"--benchmark={name!r}: unknown benchmark; expected one of {', '.join(BENCHMARK_NAMES)}"
        ) from None


#: The settings of ``EvaluateConfig`` a benchmark's convention sets.
CONVENTION_FIELDS: tuple[str, ...] = ("earth_radius_km", "threshold_rule", "admin_rule")


def with_convention(
    config: ExternalEvaluateConfig, name: str, keep: Collection[str] = ()
) -> ExternalEvaluateConfig:
    """``config`` scored under benchmark ``name``'s convention, except the ``CONVENTION_FIELDS``
    named in ``keep`` (those the user set). The admin rule is set only by a benchmark that reports
    admin-level accuracy (OSV-5M's rule on OSV-5M); elsewhere it has nothing to count."""
    bench = get_benchmark(name)
    convention = bench.convention
    values: dict[str, Any] = {
        "earth_radius_km": convention.earth_radius_km,
        "threshold_rule": convention.threshold_rule,
    }
    if bench.admin:
        values["admin_rule"] = convention.admin_rule
    evaluate = dataclasses.replace(config.evaluate, **{k: v for k, v in values.items() if k not in keep})
    return dataclasses.replace(config, evaluate=evaluate)


def check_header(csv_path: str, benchmark: Benchmark) -> None:
    """Refuses a test set whose header lacks the benchmark's id, latitude or longitude column
    (case-insensitive), in one line naming the file and the expected columns."""
    with open(csv_path, encoding="utf-8-sig", errors="replace", newline="") as f:
        header = next(csv.reader(f), [])
    names = {h.strip().lower() for h in header}
    missing = [c for c in benchmark.required if c.lower() not in names]
    if missing:
        raise EvaluationError(
            f"{csv_path}: header {','.join(h.strip() for h in header) or '(empty)'} lacks "
            f"{', '.join(missing)}; the {benchmark.title} benchmark expects the columns {benchmark.columns}"
        )


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def read_published(text: str | None = None) -> list[dict[str, Any]]:
    """The rows of the data file (or of ``text`` in its format): numbers as floats, None where
    empty."""
    if text is None:
        text = importlib.resources.files(__package__).joinpath("published", PUBLISHED_FILE).read_text("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != PUBLISHED_COLUMNS:
        raise EvaluationError(
            f"{PUBLISHED_FILE}: columns {reader.fieldnames}; expected {list(PUBLISHED_COLUMNS)}"
        )
    numeric = (*ACCURACY_FIELDS, "mean_km", "geoscore", *ADMIN_FIELDS, "earth_radius_km")
    rows = []
    for line, row in enumerate(reader, start=2):
        for column, allowed in (("distance", DISTANCES), ("admin_rule", ADMIN_RULES)):
            if row[column] not in ("", *allowed):
                raise EvaluationError(
                    f"{PUBLISHED_FILE}:{line}: {column} {row[column]!r}; expected empty or one of {allowed}"
                )
        rows.append({k: (_number(v) if k in numeric else v) for k, v in row.items()})
    return rows


def published_for(name: str) -> list[dict[str, Any]]:
    """The published rows of one benchmark."""
    return [row for row in read_published() if row["benchmark"] == name]


def has_admin_numbers(row: dict[str, Any]) -> bool:
    """Whether a published row gives admin-level accuracy (whose rule then matters)."""
    return any(row[f] is not None for f in ADMIN_FIELDS)


def compare_convention(row: dict[str, Any], used: Convention, admin: bool) -> tuple[str, tuple[str, ...]]:
    """Whether a published row was computed under ``used``, from the convention the data file
    records for it: ("yes" | "no" | "unknown", how it differs in words).

    "no" as soon as one recorded part differs: the distance kind (a geodesic row is never geoloc's,
    which computes haversine only), the sphere's radius (haversine rows), the threshold rule, or,
    where ``admin`` (the benchmark reports admin-level accuracy) and the row has admin numbers, the
    admin rule. "unknown" when nothing recorded differs but a part is not recorded (the source's
    code could not be read); "yes" when every part is recorded and equal."""
    differences: list[str] = []
    unknown = False
    distance, radius, rule = row["distance"], row["earth_radius_km"], row["threshold_rule"]
    if not distance:
        unknown = True
    elif distance != used.distance:
        note = f"{distance} distance, not {used.distance}"
        if distance == GEODESIC:
            note += " (the WGS84 ellipsoid's geodesic, which geoloc does not compute)"
        differences.append(note)
    elif radius is None:
        unknown = True
    elif not math.isclose(radius, used.earth_radius_km):
        differences.append(f"Earth radius {radius:g} km, not {used.earth_radius_km:g} km")
    if not rule:
        unknown = True
    elif rule != used.threshold_rule:
        differences.append(f"d {_sign(rule)} t, not d {_sign(used.threshold_rule)} t")
    if admin and has_admin_numbers(row):
        if not row["admin_rule"]:
            unknown = True
        elif row["admin_rule"] != used.admin_rule:
            differences.append(
                f"admin accuracy by the {row['admin_rule']} rule, not the {used.admin_rule} rule"
            )
    verdict = "no" if differences else ("unknown" if unknown else "yes")
    return verdict, tuple(differences)


def used_convention(results: dict[str, Any]) -> Convention:
    """The convention an evaluation was computed under (``results["convention"]``); results
    written before the admin rule was recorded used geoloc's."""
    c = results["convention"]
    formula = HAVERSINE if c["distance"] == DISTANCE_FORMULA else c["distance"]
    return Convention(
        float(c["earth_radius_km"]), c["threshold_rule"], formula, c.get("admin_rule", "geoloc")
    )


def benchmark_results(benchmark: Benchmark, used: Convention) -> dict[str, Any]:
    """What ``results.json`` says of the benchmark: its name, columns, convention, whether the run
    used it, and the published rows with their convention check (and how each differs)."""
    rows = []
    for row in published_for(benchmark.name):
        verdict, differences = compare_convention(row, used, benchmark.admin)
        rows.append({**row, "same_convention": verdict, "convention_differences": list(differences)})
    return {
        "name": benchmark.name,
        "title": benchmark.title,
        "photos": benchmark.photos,
        "reference": benchmark.reference,
        "columns": benchmark.columns,
        "convention": dataclasses.asdict(benchmark.convention),
        "run_convention": dataclasses.asdict(used),
        "run_uses_benchmark_convention": used.same_as(benchmark.convention, benchmark.admin),
        "admin": benchmark.admin,
        "published": rows,
    }


def benchmark_table(results: dict[str, Any]) -> Table | None:
    """The "benchmark" table: the run's models (at the report's label point) and the published
    rows, same columns; the conventions stated in its notes. None when the results hold no
    benchmark."""
    bench = results.get("benchmark")
    if not bench:
        return None
    lp = results["label_point"]
    admin_levels = ADMIN_LEVELS if bench["admin"] else ()
    admin_run = (results.get("admin_accuracy") or {}).get("models", {})
    rows: list[tuple[Any, ...]] = []
    summaries = []
    for key, model in results["models"].items():
        s = model["by_label_point"][lp]
        summaries.append(s)
        rows.append(
            (
                model["display_name"],
                "this run",
                s["num_photos"],
                *accuracy_values(s, ACCURACY_THRESHOLDS_KM),
                summary_value(s, "mean_km"),
                summary_value(s, "geoscore"),
                *(admin_value(admin_run.get(key, {}), level) for level in admin_levels),
                "yes",
            )
        )
    for row in bench["published"]:
        rows.append(
            (
                row["system"],
                f"{row['paper']} ({row['year']})",
                None,
                *(row[f] for f in ACCURACY_FIELDS),
                row["mean_km"],
                row["geoscore"],
                *(row[f"{level}_acc"] for level in admin_levels),
                row["same_convention"],
            )
        )
    run, own = Convention(**bench["run_convention"]), Convention(**bench["convention"])
    admin = bench["admin"]
    notes = [
        f"The {bench['title']} set: {bench['photos']} as distributed ({bench['reference']}); columns "
        f"{bench['columns']}. A run on part of it is not comparable row for row.",
        f"Convention of the run's rows: {run.describe(admin)}. The {bench['title']} benchmark's: "
        f"{own.describe(admin)}"
        + ("." if bench["run_uses_benchmark_convention"] else " (the run was set to another one)."),
        "'Same convention': whether a published row was computed as the run's rows were, from the "
        "radius, threshold rule, distance kind"
        + (" and admin rule" if admin else "")
        + " its data file records ('unknown': its source's code could not be read). Published rows: "
        f"geoloc_tf/evaluation/published/{PUBLISHED_FILE}, where each has its source.",
    ]
    notes.extend(
        f"'no' for {row['system']}: {'; '.join(row['convention_differences'])}."
        for row in bench["published"]
        if row.get("convention_differences")
    )
    note = interval_note(results, summaries)
    if note:
        notes.append(f"{note} Published rows carry no interval: their sources give none.")
    if not bench["published"]:
        notes.append(
            f"No published result on {bench['title']} could be verified yet (see the data file's README)."
        )
    return Table(
        "benchmark",
        f"Benchmark {bench['title']}: this run beside published systems (accuracy %)",
        (
            "System",
            "Paper",
            "Photos",
            *threshold_columns(list(ACCURACY_THRESHOLDS_KM)),
            "Mean (km)",
            GEOSCORE_COLUMN,
            *(f"{ADMIN_LEVEL_NAMES[level]} (admin)" for level in admin_levels),
            "Same convention",
        ),
        tuple(rows),
        tuple(notes),
    )
