"""The report's tables, laid out like the paper's, built from ``results.json`` content.

Table 3 (imagery vs cell centroid label points, §4.1.1), Table 4 (outdoor only, §4.1.2), Table 6
(all models, best possible, a most-frequent-cell baseline), Table 7 (KL divergence, Shannon entropy,
mean and median error, appendix C) and the Wilcoxon tests (§4.2). Tables 3 and 6 also give the mean
GeoScore (OSV-5M's 5000 * exp(-d / 1492.7 km), ``mesh.geodesy.geoscore``) beside mean and median
error, so a row reads like the OSV-5M benchmark's. Beyond the paper: country / region / sub-region
/ city accuracy (``admin``, OSV-5M's metric), the photographer-disjoint rows (``leakage``) and the
rows without near-duplicates of training photos (``near_duplicates``), when ``results`` has them. Every table has a "Photos" column: how many photos its row covers. A
``Table`` renders as Markdown, CSV and a JSON-able dict.

Every accuracy, mean and median error and GeoScore of a row carries its 95 % interval where the
results have one (``uncertainty``): Markdown shows ``6.38 [5.41, 7.40]``, CSV and JSON keep the
numbers plain, each such column followed by ``<column> lo`` and ``<column> hi``; each table's note
says how the intervals were made (or that the bootstrap was off). The "differences" table gives the
paired differences B - A the findings read (``results["differences"]``), each with its interval.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Sequence
from typing import Any

from mesh.geodesy import DISTANCE_FORMULA, EARTH_RADIUS_KM, threshold_key

#: Names of the paper's thresholds (§3.1.3): street, city, region, country, continent.
THRESHOLD_NAMES: dict[float, str] = {
    1.0: "Street",
    25.0: "City",
    200.0: "Region",
    750.0: "Country",
    2500.0: "Continent",
}

#: Why a point predictor (M1 kNN) has empty Table 7 class-bias columns.
POINT_CLASS_BIAS_NOTE = (
    "predicts a point, not a cell: KL divergence and entropy compare proportions of "
    "predicted cells (appendix C), so they are left empty"
)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A number with its 95 % interval (``uncertainty``): Markdown shows ``6.38 [5.41, 7.40]``; CSV
    and JSON give the column's value and two more columns, ``<column> lo`` and ``<column> hi``."""

    value: float | None
    lo: float | None
    hi: float | None


def estimate(value: Any, bounds: list[float | None] | None) -> Any:
    """``value`` with its interval when ``bounds`` is given, else the plain value."""
    return value if bounds is None else Estimate(value, bounds[0], bounds[1])


@dataclasses.dataclass(frozen=True)
class Table:
    """A titled table: ``columns`` names, ``rows`` of cell values (str, int, float, bool, None)."""

    key: str  # file stem, e.g. "table6"
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    notes: tuple[str, ...] = ()

    def to_markdown(self) -> str:
        """A Markdown section: title, pipe table (numbers formatted for reading), notes."""
        lines = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|",
        ]
        for row in self.rows:
            lines.append("| " + " | ".join(_fmt_cell(c, v) for c, v in zip(self.columns, row)) + " |")
        if not self.rows:
            lines.append("| " + " | ".join(["(none)"] + [""] * (len(self.columns) - 1)) + " |")
        for note in self.notes:
            lines += ["", note]
        return "\n".join(lines) + "\n"

    def flat(self) -> tuple[tuple[str, ...], list[list[Any]]]:
        """Columns and rows with plain values: a column holding an ``Estimate`` in any row is
        followed by ``<column> lo`` and ``<column> hi`` (None where a row has no interval)."""
        wide = [any(isinstance(row[i], Estimate) for row in self.rows) for i in range(len(self.columns))]
        columns = tuple(
            n for c, w in zip(self.columns, wide) for n in ((c, f"{c} lo", f"{c} hi") if w else (c,))
        )
        rows = []
        for row in self.rows:
            out: list[Any] = []
            for v, w in zip(row, wide):
                if isinstance(v, Estimate):
                    out += [v.value, v.lo, v.hi]
                else:
                    out += [v, None, None] if w else [v]
            rows.append(out)
        return columns, rows

    def to_csv(self) -> str:
        """CSV with full-precision values (empty cell for None); intervals in ``lo``/``hi`` columns."""
        columns, rows = self.flat()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        columns, rows = self.flat()
        return {
            "key": self.key,
            "title": self.title,
            "columns": list(columns),
            "rows": [[_json_value(v) for v in row] for row in rows],
            "notes": list(self.notes),
        }


def _json_value(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _fmt_cell(column: str, v: Any) -> str:
    """A cell for reading; an ``Estimate`` as ``value [lo, hi]``."""
    if isinstance(v, Estimate):
        if v.lo is None or v.hi is None or (isinstance(v.lo, float) and math.isnan(v.lo)):
            return _fmt(column, v.value)
        return f"{_fmt(column, v.value)} [{_fmt(column, v.lo)}, {_fmt(column, v.hi)}]"
    return _fmt(column, v)


def _fmt(column: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return f"{v:,}" if column.startswith("Photos") or column.endswith("pairs") else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if column == "p-value":
            return f"{v:.3g}" if v > 0 else "< 1e-300"
        if column.endswith("(km)") or column in ("W statistic", GEOSCORE_COLUMN):
            return f"{v:,.0f}"
        if column.startswith("KL") or column.startswith("Entropy"):
            return f"{v:.4f}"
        return f"{v:.2f}"
    return str(v)


#: The column of the mean GeoScore (``mesh.geodesy.geoscore``).
GEOSCORE_COLUMN = "GeoScore"


def _geoscore(summary: dict[str, Any] | None) -> Any:
    """A summary's mean GeoScore; None for summaries written before it existed."""
    return None if summary is None else summary.get("geoscore")


def convention(results: dict[str, Any]) -> dict[str, Any]:
    """``results["convention"]``; results written before it existed used the paper's, and those
    written before the admin rule was a setting, geoloc's."""
    return {
        "earth_radius_km": EARTH_RADIUS_KM,
        "distance": DISTANCE_FORMULA,
        "threshold_rule": "le",
        "admin_rule": "geoloc",
        **(results.get("convention") or {}),
    }


def convention_line(results: dict[str, Any]) -> str:
    """One sentence saying how the numbers were computed: formula, radius, threshold rule."""
    c = convention(results)
    rule = (
        "an error equal to a threshold counts as within it (rule `le`, the paper's)"
        if c["threshold_rule"] == "le"
        else "only errors strictly below a threshold count (rule `lt`, as OSV-5M, PLONK and PIGEON)"
    )
    return f"Distances: {c['distance']}, Earth radius {c['earth_radius_km']:.10g} km; {rule}."


def summary_columns(thresholds_km: list[float]) -> tuple[str, ...]:
    """The columns of an error summary (``metrics.error_summary``): accuracy at each threshold, mean
    and median error, GeoScore."""
    return (*threshold_columns(thresholds_km), "Mean (km)", "Median (km)", GEOSCORE_COLUMN)


def summary_cells(summary: dict[str, Any], thresholds_km: list[float]) -> tuple[Any, ...]:
    """An error summary's values under ``summary_columns``, each with its interval when it has one."""
    return (
        *accuracy_values(summary, thresholds_km),
        summary_value(summary, "mean_km"),
        summary_value(summary, "median_km"),
        summary_value(summary, "geoscore"),
    )


def summary_value(summary: dict[str, Any], key: str) -> Any:
    """``summary[key]`` (mean_km, median_km, geoscore), an ``Estimate`` when the summary has its
    interval (``uncertainty``); None for a key that summaries written before it lack."""
    interval = summary.get("interval")
    return estimate(summary.get(key), interval[key] if interval else None)


def interval_note(results: dict[str, Any], summaries: Sequence[dict[str, Any] | None]) -> str | None:
    """The note of a table whose numbers carry 95 % intervals: how they were made, over how many
    photographers (or photos); with the bootstrap off, that there are none. None for results
    written before intervals existed."""
    intervals = [s["interval"] for s in summaries if s and s.get("interval")]
    if not intervals:
        boot = results.get("bootstrap")
        if boot is not None and not boot.get("samples"):
            return "No 95 % intervals: the bootstrap is off (bootstrap_samples = 0)."
        return None
    first = intervals[0]
    units = sorted({i["unit"] for i in intervals})
    counts = sorted({i["num_units"] for i in intervals})
    unit = " or ".join(units)
    together = ["all photos of a drawn photographer together"] if "photographers" in units else []
    if len(counts) == 1:
        over = f"{counts[0]:,} {unit}" + (f" ({together[0]})" if together else "")
    else:
        over = f"each row's {unit} ({'; '.join([f'{counts[0]:,} to {counts[-1]:,}', *together])})"
    return (
        f"In brackets: 95 % interval, {first['method']} over {over}, {first['samples']:,} resamples, "
        f"seed {first['seed']}; it is about the test sample, not about training (seeds are)."
    )


def _with_note(notes: list[str], note: str | None) -> list[str]:
    return [*notes, note] if note else notes


def threshold_columns(thresholds_km: list[float]) -> tuple[str, ...]:
    """'Street 1 km', 'City 25 km', ... for the paper's thresholds, 'X km' for others."""
    return tuple(
        f"{THRESHOLD_NAMES[t]} {t:g} km" if t in THRESHOLD_NAMES else f"{t:g} km" for t in thresholds_km
    )


def accuracy_values(summary: dict[str, Any] | None, thresholds_km: Sequence[float]) -> tuple[Any, ...]:
    """A summary's accuracy at each threshold, each an ``Estimate`` when the summary has its
    interval; None at a threshold the summary was not computed at (or for no summary)."""
    if summary is None:
        return (None,) * len(thresholds_km)
    interval = (summary.get("interval") or {}).get("accuracy_percent") or {}
    return tuple(
        estimate(summary["accuracy_percent"].get(threshold_key(t)), interval.get(threshold_key(t)))
        for t in thresholds_km
    )


def _row_name(results: dict[str, Any], name: str) -> str:
    prefix = results.get("mesh_name") or ""
    return f"{prefix} {name}".strip()


def table3(results: dict[str, Any]) -> Table:
    """Table 3: each model with the imagery-centroid and the cell-centroid label point."""
    th = results["thresholds_km"]
    rows, notes = [], [f"Split {results['split']}; {results['num_cells']} cells."]
    summaries = []
    for model in results["models"].values():
        point = _is_point(model)
        for lp, imagery in (("imagery", None),) if point else (("cell", False), ("imagery", True)):
            s = model["by_label_point"][lp]
            summaries.append(s)
            rows.append(
                (
                    _row_name(results, model["display_name"]),
                    imagery,
                    s["num_photos"],
                    *summary_cells(s, th),
                )
            )
        if point:
            notes.append(f"{model['display_name']} predicts a point, not a cell: no label point, one row.")
    return Table(
        "table3",
        "Table 3: imagery centroid vs cell centroid label points (accuracy %)",
        (
            "Model",
            "Imagery Centroid",
            "Photos",
            *summary_columns(th),
        ),
        tuple(rows),
        tuple(_with_note(notes, interval_note(results, summaries))),
    )


def _is_point(model: dict[str, Any]) -> bool:
    """A point predictor's row (M1 kNN): errors from its point, no class (``results``)."""
    return model.get("prediction") == "point"


def table4(results: dict[str, Any]) -> Table:
    """Table 4: each model on all photos and on outdoor photos only."""
    th, lp = results["thresholds_km"], results["label_point"]
    rows, notes, summaries = [], [], []
    for model in results["models"].values():
        name = _row_name(results, model["display_name"])
        s = model["by_label_point"][lp]
        summaries.append(s)
        rows.append((name, False, s["num_photos"], *accuracy_values(s, th)))
        o = model["outdoor"]
        if o["by_label_point"] is None:
            notes.append(
                f"{model['display_name']}: no outdoor probabilities known ({o['probability_source']}); "
                "no outdoor-only row."
            )
            continue
        so = o["by_label_point"][lp]
        summaries.append(so)
        rows.append((name, True, so["num_photos"], *accuracy_values(so, th)))
    first = next(iter(results["models"].values()))["outdoor"]
    notes.insert(
        0,
        f"Outdoor: outdoor probability >= {results['outdoor_threshold']:g} "
        f"(from the {first['probability_source']}; photos with unknown probability are not outdoor). "
        f"Label point: {lp} centroid.",
    )
    return Table(
        "table4",
        "Table 4: outdoor imagery only (accuracy %)",
        ("Model", "Outdoor Only", "Photos", *threshold_columns(th)),
        tuple(rows),
        tuple(_with_note(notes, interval_note(results, summaries))),
    )


def table6(results: dict[str, Any]) -> Table:
    """Table 6: all models (all photos and outdoor only), the most-frequent-cell baseline, best possible."""
    th, lp = results["thresholds_km"], results["label_point"]

    summaries: list[dict[str, Any]] = []

    def row(name: str, outdoor: bool, s: dict[str, Any]) -> tuple:
        summaries.append(s)
        return (name, outdoor, s["num_photos"], *summary_cells(s, th))

    rows = []
    for model in results["models"].values():
        name = _row_name(results, model["display_name"])
        rows.append(row(name, False, model["by_label_point"][lp]))
        if model["outdoor"]["by_label_point"] is not None:
            rows.append(row(name, True, model["outdoor"]["by_label_point"][lp]))
    mf = results["most_frequent_cell"]
    rows.append(
        row(_row_name(results, f"Most Frequent Cell (cell {mf['cell']})"), False, mf["by_label_point"][lp])
    )
    for r in results["best_possible"].get("rows", []):
        over = "" if r["over"] == "all photos" else ", photos in kept cells"
        rows.append(row(_row_name(results, f"Best Possible ({r['label_point']}{over})"), False, r))
    bp = results["best_possible"]
    notes = [
        f"Label point of model rows: {lp} centroid. Best possible: every photo given its own cell; a photo "
        "in a dropped cell is scored against the nearest kept label point ('all photos'). GeoScore: mean "
        "of 5000 * exp(-error / 1492.7 km) over the row's photos (OSV-5M's; 5000 is a perfect guess). "
        "Best possible has no interval: it is the ceiling the mesh puts on any model on these photos, a "
        "reference line that no finding compares a model with."
    ]
    if bp.get("num_photos"):
        notes.append(
            f"{bp['share_in_kept_cells_percent']:.2f} % of the {bp['num_photos']:,} reference photos "
            f"({results['reference_model']}) lie in kept cells."
        )
    notes = _with_note(notes, interval_note(results, summaries))
    return Table(
        "table6",
        "Table 6: accuracy of every model (%), mean and median error, GeoScore",
        (
            "Model",
            "Outdoor Only",
            "Photos",
            *summary_columns(th),
        ),
        tuple(rows),
        tuple(notes),
    )


def _table7_row(results: dict[str, Any], name: str, cb: dict[str, Any], s: dict[str, Any]) -> tuple:
    """One row of Table 7: class bias (photos, KL, entropies) and errors (photos, mean, median)."""
    return (
        _row_name(results, name),
        cb["num_photos"],
        cb["kl_divergence"],
        cb["entropy_pred_nats"],
        cb["entropy_true_nats"],
        s["num_photos"],
        summary_value(s, "mean_km"),
        summary_value(s, "median_km"),
    )


def table7(results: dict[str, Any]) -> Table:
    """Table 7: KL(p || q), entropy of q and of p (nats, +1 counts, appendix C), mean and median error."""
    lp = results["label_point"]
    rows, point_notes, summaries = [], [], []
    for model in results["models"].values():
        cb, s = model["class_bias"], model["by_label_point"][lp]
        summaries.append(s)
        if cb is None:
            point_notes.append(f"{model['display_name']} {POINT_CLASS_BIAS_NOTE}.")
            cb = dict.fromkeys(("num_photos", "kl_divergence", "entropy_pred_nats", "entropy_true_nats"))
        rows.append(_table7_row(results, model["display_name"], cb, s))
    mf = results["most_frequent_cell"]
    rows.append(_table7_row(results, "Most Frequent Cell", mf["class_bias"], mf["by_label_point"][lp]))
    summaries.append(mf["by_label_point"][lp])
    bp = results["best_possible"]
    if bp.get("rows"):
        cb = bp["class_bias"]
        name = "imagery centroid" if lp == "imagery" else "cell centroid"
        r = next(r for r in bp["rows"] if r["label_point"] == name and r["over"] == "all photos")
        rows.append(
            (
                _row_name(results, "Best Possible"),
                cb["num_photos"],
                cb["kl_divergence"],
                cb["entropy_pred_nats"],
                cb["entropy_true_nats"],
                r["num_photos"],
                r["mean_km"],
                r["median_km"],
            )
        )
    notes = (
        "KL and entropies cover the photos whose true location is in a kept cell ('Photos (KL)'): a photo "
        "in a dropped cell has no true class. 1 is added to every cell's count before taking proportions "
        f"(appendix C). Errors ('Photos (errors)'): {lp} centroid, all photos of the row's table.",
        *point_notes,
        *_with_note([], interval_note(results, summaries)),
    )
    return Table(
        "table7",
        "Table 7: class bias (KL divergence from true class proportions) and errors",
        (
            "Model",
            "Photos (KL)",
            "KL Divergence",
            "Entropy predicted (nats)",
            "Entropy true (nats)",
            "Photos (errors)",
            "Mean Error (km)",
            "Median Error (km)",
        ),
        tuple(rows),
        notes,
    )


def wilcoxon_table(results: dict[str, Any]) -> Table:
    """The paired Wilcoxon signed-rank tests (§4.2): difference = error A - error B per photo."""
    rows = tuple(
        (
            f"{t['display_b']} vs {t['display_a']}",
            t["num_photos"],
            t["num_nonzero"],
            t["mean_difference_km"],
            t["median_difference_km"],
            t["statistic"],
            t["p_value"],
            t["direction"],
        )
        for t in results["wilcoxon"]
    )
    return Table(
        "wilcoxon",
        "Wilcoxon signed-rank tests on paired per-photo errors",
        (
            "B vs A",
            "Photos",
            "Nonzero pairs",
            "Mean A-B (km)",
            "Median A-B (km)",
            "W statistic",
            "p-value",
            "Direction",
        ),
        rows,
        (
            f"Errors at the {results['label_point']} centroid; photos matched by photo_id; positive differences "
            "mean B is closer to the truth (the paper: M2 vs M1, 381 km, p < 1e-16). Zero differences are "
            "dropped (Wilcoxon's method); two-sided p-value. The test counts photos as independent, which "
            "photos of one photographer are not: the paired differences' intervals account for that.",
        ),
    )


def _side_name(results: dict[str, Any], kind: str, side: dict[str, str]) -> str:
    """A row of a difference: the model, and what differs (label point, outdoor photos)."""
    name = _row_name(results, side["display_name"])
    if kind == "label_point":
        return f"{name}, {side['label_point']} centroid"
    if kind == "outdoor":
        return f"{name}, {'outdoor only' if side['photos'] == 'outdoor' else 'all photos'}"
    return name


def differences_table(results: dict[str, Any]) -> Table:
    """The paired differences B - A the findings read (``results["differences"]``), each with its
    95 % interval from the same resampled photographers for both rows."""
    th = results["thresholds_km"]
    diffs = results.get("differences") or []
    rows = tuple(
        (
            _side_name(results, d["kind"], d["b"]),
            _side_name(results, d["kind"], d["a"]),
            d.get("num_photos_b", d["num_photos"]),
            d.get("num_photos_a", d["num_photos"]),
            *summary_cells(d, th),
        )
        for d in diffs
    )
    notes = [
        f"B - A of each number, on the photos both rows are computed from (model pairs: the photos both "
        f"tables hold, matched by photo_id; label point of model pairs: {results['label_point']} centroid). "
        "Accuracy in points (positive: B locates more photos), errors in km (negative: B is closer), "
        "GeoScore (positive: B is better). Photos B and A: the photos of each row (an outdoor-only row "
        "holds the outdoor ones of the photos both share). Both rows of a difference are computed on the "
        "same resampled "
        "photographers (paired), so an interval that excludes 0 is a difference this test sample supports."
    ]
    return Table(
        "differences",
        "Paired differences: B - A with 95 % interval",
        ("B", "A", "Photos B", "Photos A", *summary_columns(th)),
        rows,
        tuple(_with_note(notes, interval_note(results, list(diffs)))),
    )


#: Column names of the admin levels (``admin.ADMIN_LEVELS``).
ADMIN_LEVEL_NAMES: dict[str, str] = {
    "country": "Country",
    "region": "Region",
    "sub_region": "Sub-region",
    "city": "City",
}


#: How the admin table's title names each rule (``admin.RULES``).
ADMIN_RULE_TITLES: dict[str, str] = {"geoloc": "geoloc's rule", "osv5m": "OSV-5M's rule"}


def admin_value(model: dict[str, Any], level: str) -> Any:
    """A model's accuracy (%) at an admin level (``results["admin_accuracy"]["models"][name]``), an
    ``Estimate`` when it has its interval; None where the level is missing."""
    found = model.get(level) or {}
    return estimate(found.get("accuracy_percent"), found.get("interval"))


def admin_table(results: dict[str, Any]) -> Table:
    """Country / region / sub-region / city accuracy (%) of every model, each with its photo count;
    the title and notes name the rule and the truth (how many photos took which)."""
    a = results["admin_accuracy"]
    levels = a["levels"]
    rule = a.get("rule", "geoloc")
    rows = tuple(
        (
            _row_name(results, results["models"][name]["display_name"]),
            *(v for level in levels for v in (admin_value(m, level), m[level]["num_photos"])),
        )
        for name, m in a["models"].items()
    )
    truths = list(
        dict.fromkeys(m["truth"].get("text", m["truth"]["truth_source"]) for m in a["models"].values())
    )
    notes = [
        f"Rule: {a.get('rule_text', rule)}.",
        f"Predicted point: the predicted cell's {a['label_point']} centroid (a point predictor's own point), "
        f"reverse-geocoded offline with {a['geocoder']}; truth: {'; '.join(truths)}.",
    ]
    notes = _with_note(notes, interval_note(results, list(a["models"].values())))
    geocoded = {m["truth"].get("num_countries_geocoded", 0) for m in a["models"].values()}
    if any(geocoded):
        notes.append(
            f"Countries that are not two-letter codes in the data set ({max(geocoded):,} photos) come from "
            "the reverse-geocoded true point."
        )
    return Table(
        "admin",
        f"Country / region / sub-region / city accuracy (%), {ADMIN_RULE_TITLES.get(rule, rule)}",
        (
            "Model",
            *(
                c
                for level in levels
                for c in (ADMIN_LEVEL_NAMES[level], f"Photos ({ADMIN_LEVEL_NAMES[level].lower()})")
            ),
        ),
        rows,
        tuple(notes),
    )


def _ids_in_training_words(leak: dict[str, Any]) -> str:
    """How many test photo ids are in the training data, in words: "unknown" with its reason when
    the ids could not be compared (``leakage.leakage_counts``), never 0."""
    found = leak.get("num_test_ids_in_training")
    written = leak.get("num_test_ids_in_training_as_written", 0)
    if found is None:
        words = f"the number with a photo id present in the training data is unknown ({leak['ids_unknown_reason']})"
        return words + (f"; {written:,} have an id found as written in it" if written else "")
    if leak.get("photo_ids_compared") == "by Flickr photo id":
        return (
            f"{found:,} of the {leak['num_test_ids_comparable']:,} with a Flickr photo id have it in "
            "the training data"
        )
    return f"{found:,} have a photo id present in the training data"


def leakage_table(results: dict[str, Any]) -> Table:
    """Every model on all test photos and on those whose photographer is absent from training."""
    leak, th, lp = results["leakage"], results["thresholds_km"], results["label_point"]
    rows, summaries = [], []
    for name, m in leak["models"].items():
        model = _row_name(results, results["models"][name]["display_name"])
        for label, key in (("all", "all"), ("not in training", "unseen_photographers")):
            s = m[key]
            summaries.append(s)
            rows.append((model, label, s["num_photos"], *summary_cells(s, th)))
    notes = [
        f"Training data: {leak['training']}. Of the {leak['num_photos']:,} test photos, "
        f"{_ids_in_training_words(leak)}; "
        f"{leak['num_photos_unseen_photographers']:,} are by the {leak['num_unseen_photographers']:,} of "
        f"{leak['num_photographers']:,} photographers absent from it. Label point: {lp} centroid."
    ]
    if not leak["has_users"]:
        notes.append(
            "The test photos name no photographer (none has two photos, none is in training): no "
            "photographer-disjoint rows."
        )
    notes = _with_note(notes, interval_note(results, summaries))
    return Table(
        "leakage",
        "Photographers absent from training vs all test photos (accuracy %)",
        (
            "Model",
            "Photographers",
            "Photos",
            *summary_columns(th),
        ),
        tuple(rows),
        tuple(notes),
    )


def near_duplicate_table(results: dict[str, Any]) -> Table:
    """Every model on all test photos and on those with no training photo within the radius."""
    near, th, lp = results["near_duplicates"], results["thresholds_km"], results["label_point"]
    radius = f"{near['radius_km']:g} km"
    rows, summaries = [], []
    for name, m in near["models"].items():
        model = _row_name(results, results["models"][name]["display_name"])
        for label, key in (("included", "all"), ("excluded", "no_near_duplicate")):
            s = m[key]
            summaries.append(s)
            rows.append((model, label, s["num_photos"], *summary_cells(s, th)))
    per_split = "; ".join(
        f"{split} ({c['num_training_photos']:,} photos): {c['num_test_photos_near']:,}"
        for split, c in near["by_split"].items()
    )
    notes = [
        f"Training data: {near['training']}. Of the {near['num_photos']:,} test photos, "
        f"{near['num_near_duplicates']:,} have a training photo within {radius} (great circle); "
        f"per training split, {per_split}. Label point: {lp} centroid.",
        "Near-duplicates 'included': all test photos; 'excluded': only the test photos with no "
        f"training photo within {radius} (setting near_duplicate_km). A photo taken where a training "
        "photo was (a burst, the same landmark from the same spot) is nearly that photo, and a model "
        "that recognises it, retrieval above all, scores it better than a new place. Near-duplicates "
        "add at most the gap between a model's two rows: photos far from every training photo also "
        "lie in less photographed places, harder for any model.",
    ]
    notes = _with_note(notes, interval_note(results, summaries))
    return Table(
        "near_duplicates",
        f"Test photos with no training photo within {radius} vs all test photos (accuracy %)",
        ("Model", "Near-duplicates", "Photos", *summary_columns(th)),
        tuple(rows),
        tuple(notes),
    )


def all_tables(results: dict[str, Any]) -> list[Table]:
    """Tables 3, 4, 6, 7 and the Wilcoxon tests, in report order, then the admin-level accuracy,
    the photographer-disjoint rows and the rows without near-duplicates when ``results`` has them;
    first, for a run scored as a standard test set (``geoloc evaluate --benchmark``), the run
    beside published systems."""
    from geoloc_tf.evaluation.benchmarks import benchmark_table

    benchmark = benchmark_table(results)
    tables = [table3(results), table4(results), table6(results), table7(results), wilcoxon_table(results)]
    if results.get("differences"):
        tables.append(differences_table(results))
    if benchmark:
        tables.insert(0, benchmark)
    if results.get("admin_accuracy"):
        tables.append(admin_table(results))
    if results.get("leakage"):
        tables.append(leakage_table(results))
    if results.get("near_duplicates"):
        tables.append(near_duplicate_table(results))
    return tables
