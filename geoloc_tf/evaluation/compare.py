"""Several runs side by side (e.g. the coarse, fine and fineP meshes of Tables 3-6) in one table.

Reads each run's ``eval/results.json`` (written by ``report.write_report``) and puts one row per
(run, model) -- plus each run's best-possible row -- with its photo count, accuracy at every
threshold, mean/median error, GeoScore (each with its 95 % interval where the run has one) and KL
divergence. Runs must share thresholds and
convention (Earth radius, threshold rule: ``results["convention"]``), which the table states.
Nothing is recomputed, so a comparison is as fast as reading the JSON and always agrees with the
runs' own reports.

``run_differences`` adds what the side-by-side rows cannot show: whether a run is better than the
first on the same test photos. For every model both runs scored (e.g. M1 trained with and without
a setting, on the same seed's splits), it reads the two runs' prediction tables, matches the photos
by photo_id and gives B - A of every number with its paired 95 % interval (both rows on the same
resampled photographers, ``results.paired_difference``), under the first run's label point,
thresholds, convention and bootstrap. Each run's predictions are scored against its own mesh, so
runs whose meshes differ compare too.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation.tables import (
    GEOSCORE_COLUMN,
    Table,
    accuracy_values,
    convention,
    convention_line,
    interval_note,
    summary_cells,
    summary_columns,
    summary_value,
    threshold_columns,
)
from geoloc_tf.run_layout import RESULTS_FILE, RunLayout
from mesh.atomic import write_text_atomic
from mesh.geodesy import threshold_key


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """A run's results: ``path`` is ``results.json``, an ``eval`` dir or a run dir."""
    p = Path(path)
    for candidate in (p, p / RESULTS_FILE, RunLayout(p).eval_results):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise EvaluationError(
                    f"{candidate}: unreadable results ({e}); expected eval/results.json"
                ) from None
    raise EvaluationError(f"{p}: no results.json (looked in {p}, {p}/eval); run the evaluate stage first")


#: What must agree for runs to sit in one table: how distances and threshold accuracy were computed
#: (the compare table has no admin-level numbers, so the admin rule may differ).
DISTANCE_CONVENTION: tuple[str, ...] = ("earth_radius_km", "distance", "threshold_rule")


def _nan(v: Any) -> Any:
    return float("nan") if v is None else v


def compare_results(runs: dict[str, dict[str, Any]]) -> Table:
    """One side-by-side table from ``{run label: results}`` (thresholds of the first run)."""
    if not runs:
        raise EvaluationError("compare_results: no runs; expected at least one results.json")
    first = next(iter(runs.values()))
    th, conv = first["thresholds_km"], convention(first)
    rows, notes = [], [convention_line(first)]
    summaries: list[dict[str, Any]] = []
    for label, res in runs.items():
        if res["thresholds_km"] != th:
            raise EvaluationError(
                f"run {label}: thresholds {res['thresholds_km']} differ from {th}; "
                "expected runs evaluated at the same thresholds"
            )
        distances = {k: convention(res)[k] for k in DISTANCE_CONVENTION}
        if distances != {k: conv[k] for k in DISTANCE_CONVENTION}:
            raise EvaluationError(
                f"run {label}: convention {distances} differs from the first run's; expected runs evaluated "
                "with the same Earth radius and threshold rule (--evaluate_earth_radius_km, "
                "--evaluate_threshold_rule)"
            )
        lp = res["label_point"]
        if res.get("notice"):
            notes.append(f"{label}: {res['notice']}")
        for model in res["models"].values():
            s = model["by_label_point"][lp]
            summaries.append(s)
            rows.append(
                (
                    label,
                    res["num_cells"],
                    model["display_name"],
                    s["num_photos"],
                    *accuracy_values(s, th),
                    *(summary_value(s, k) for k in ("mean_km", "median_km", "geoscore")),
                    _nan((model["class_bias"] or {}).get("kl_divergence")),
                )
            )
        name = "imagery centroid" if lp == "imagery" else "cell centroid"
        for r in res.get("best_possible", {}).get("rows", []):
            if r["label_point"] == name and r["over"] == "all photos":
                rows.append(
                    (
                        label,
                        res["num_cells"],
                        "Best Possible",
                        r["num_photos"],
                        *(_nan(r["accuracy_percent"][threshold_key(t)]) for t in th),
                        _nan(r["mean_km"]),
                        _nan(r["median_km"]),
                        _nan(r.get("geoscore")),
                        0.0,
                    )
                )
    note = interval_note(first, summaries)
    if note:
        notes.append(note)
    return Table(
        "compare",
        "Runs side by side (accuracy %)",
        (
            "Run",
            "Cells",
            "Model",
            "Photos",
            *threshold_columns(th),
            "Mean Error (km)",
            "Median Error (km)",
            GEOSCORE_COLUMN,
            "KL Divergence",
        ),
        tuple(rows),
        tuple(notes),
    )


def compare_runs(
    paths: list[str | os.PathLike], out_dir: str | os.PathLike | None = None, labels: list[str] | None = None
) -> tuple[list[Table], dict[str, str]]:
    """Compare runs (run dirs, eval dirs or results.json files); labels default to the run dirs'
    names. The tables: the runs side by side, then, for two runs or more, the paired differences of
    each later run from the first (``run_differences``; models whose prediction tables a run does
    not have are left out). With ``out_dir``, writes ``compare.md`` (both tables), ``compare.csv``
    and ``compare_differences.csv`` there (atomically)."""
    labels = labels or [_label(p) for p in paths]
    if len(labels) != len(paths):
        raise EvaluationError(f"compare_runs: {len(labels)} labels for {len(paths)} runs; expected one each")
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"compare_runs: duplicate run labels {labels}; pass distinct labels")
    results = {label: read_results(p) for label, p in zip(labels, paths)}
    tables = [compare_results(results)]
    if len(paths) > 1:
        first = next(iter(results.values()))
        tables.append(run_differences_table(first, run_differences(paths, labels)))
    files: dict[str, str] = {}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "compare.md", "\n\n".join(t.to_markdown() for t in tables))
        files = {"markdown": str(out / "compare.md")}
        for table, name in zip(tables, ("compare.csv", "compare_differences.csv")):
            write_text_atomic(out / name, table.to_csv())
            files[name[:-4].replace("compare_", "") if "_" in name else "csv"] = str(out / name)
    return tables, files


def run_differences(
    paths: list[str | os.PathLike], labels: list[str] | None = None, models: list[str] | None = None
) -> list[dict[str, Any]]:
    """Paired differences between runs (module docstring): for each later run and each model of
    ``models`` (default: every model the first run scored) that both runs predicted, a record in
    the report's difference schema (``results["differences"]``) with ``run_a``/``run_b`` labels.
    Only the first run needs its evaluation (its split, label point, convention and bootstrap are
    used); a later run needs its prediction tables of that split and its mesh, so a run stopped
    after its predict stage compares too. Runs without shared photos, or a later run evaluated on
    another split, are an EvaluationError."""
    from geoloc_tf.evaluation import metrics
    from geoloc_tf.evaluation.model_predictions import paired_rows, read_prediction_tables
    from geoloc_tf.evaluation.results import EvalConfig, paired_difference
    from mesh import Mesh

    labels = labels or [_label(p) for p in paths]
    runs = [_run_dir(p) for p in paths]
    first = read_results(paths[0])
    lp, split = first["label_point"], first["split"]
    config = EvalConfig(
        split=split,
        thresholds_km=tuple(first["thresholds_km"]),
        earth_radius_km=float(convention(first)["earth_radius_km"]),
        threshold_rule=convention(first)["threshold_rule"],
        bootstrap_samples=int(first.get("bootstrap", {}).get("samples", 0)),
        bootstrap_seed=int(first.get("bootstrap", {}).get("seed", 0)),
    )
    wanted = models or list(first["models"])

    @functools.cache
    def label_points(run: Path):
        """The run's mesh, read once for all its models."""
        return metrics.label_points(Mesh.load(RunLayout(run).mesh), lp)

    def errors(run: Path, model: str):
        layout = RunLayout(run)
        tables = layout.prediction_tables(split).get(model)
        if not tables:
            return None
        pred = read_prediction_tables(tables, model)
        if pred.pred_lat is not None and pred.pred_lon is not None:  # a point table
            return pred, metrics.point_errors_km(
                pred.pred_lat, pred.pred_lon, pred.lat, pred.lon, config.earth_radius_km
            )
        return pred, metrics.prediction_errors_km(
            pred.cell, pred.lat, pred.lon, label_points(run), config.earth_radius_km
        )

    out = []
    base = {m: errors(runs[0], m) for m in wanted}
    for label, run in zip(labels[1:], runs[1:]):
        evaluated = RunLayout(run).eval_results
        if evaluated.is_file() and (other_split := read_results(evaluated)["split"]) != split:
            raise EvaluationError(
                f"run {label}: evaluated on {other_split!r}, the first run on {split!r}; expected one split"
            )
        for model in wanted:
            other = errors(run, model) if base[model] is not None else None
            if other is None:
                continue
            (pred_a, errors_a), (pred_b, errors_b) = base[model], other
            rows_a, rows_b = paired_rows(pred_a, pred_b)
            if len(rows_a) == 0:
                raise EvaluationError(
                    f"run {label}: no {split} photo in common with run {labels[0]} for model {model!r}; "
                    "expected runs of the same data set and seed"
                )
            diff = paired_difference(errors_a[rows_a], errors_b[rows_b], pred_a.user_hash[rows_a], config)
            name = first["models"].get(model, {}).get("display_name", model)
            out.append(
                {
                    "kind": "runs",
                    "run_a": labels[0],
                    "run_b": label,
                    "a": {"model": model, "display_name": name, "label_point": lp, "photos": "all"},
                    "b": {"model": model, "display_name": name, "label_point": lp, "photos": "all"},
                    **diff,
                }
            )
    return out


def run_differences_table(results: dict[str, Any], differences: list[dict[str, Any]]) -> Table:
    """``run_differences`` as a table: run B - run A of each model, with its interval."""
    th = results["thresholds_km"]
    rows = tuple(
        (d["b"]["display_name"], d["run_b"], d["run_a"], d["num_photos"], *summary_cells(d, th))
        for d in differences
    )
    note = (
        "B - A of each number on the test photos both runs scored, matched by photo_id; accuracy in "
        "points, errors in km (negative: B is closer), GeoScore (positive: B is better). Both runs are "
        "scored on the same resampled photographers (paired), so an interval that excludes 0 is a "
        "difference this test sample supports; the seeds' own variation is not in it."
    )
    return Table(
        "compare_differences",
        "Paired differences between runs: run B - run A, with 95 % interval",
        ("Model", "Run B", "Run A", "Photos", *summary_columns(th)),
        rows,
        (note,),
    )


def _run_dir(path: str | os.PathLike) -> Path:
    """The run directory of a run dir, its eval dir or its results.json."""
    p = Path(path).resolve()
    if p.name == RESULTS_FILE:
        p = p.parent
    if p == RunLayout(p.parent).eval_dir:
        p = p.parent
    return p


def _label(path: str | os.PathLike) -> str:
    return _run_dir(path).name
