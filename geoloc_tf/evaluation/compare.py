"""Several runs side by side (e.g. the coarse, fine and fineP meshes of Tables 3-6) in one table.

Reads each run's ``eval/results.json`` (written by ``report.write_report``) and puts one row per
(run, model) -- plus each run's best-possible row -- with its photo count, accuracy at every
threshold, mean/median error, GeoScore (each with its 95 % interval where the run has one) and KL
divergence. Runs must share thresholds and
convention (Earth radius, threshold rule: ``results["convention"]``), which the table states.
Nothing is recomputed, so a comparison is as fast as reading the JSON and always agrees with the
runs' own reports.
"""

from __future__ import annotations

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
) -> tuple[Table, dict[str, str]]:
    """Compare runs (run dirs, eval dirs or results.json files); labels default to the run dirs'
    names. With ``out_dir``, writes ``compare.md`` and ``compare.csv`` there (atomically)."""
    labels = labels or [_label(p) for p in paths]
    if len(labels) != len(paths):
        raise EvaluationError(f"compare_runs: {len(labels)} labels for {len(paths)} runs; expected one each")
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"compare_runs: duplicate run labels {labels}; pass distinct labels")
    table = compare_results({label: read_results(p) for label, p in zip(labels, paths)})
    files: dict[str, str] = {}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "compare.md", table.to_markdown())
        write_text_atomic(out / "compare.csv", table.to_csv())
        files = {"markdown": str(out / "compare.md"), "csv": str(out / "compare.csv")}
    return table, files


def _label(path: str | os.PathLike) -> str:
    p = Path(path).resolve()
    if p.name == RESULTS_FILE:
        p = p.parent
    if p == RunLayout(p.parent).eval_dir:
        p = p.parent
    return p.name
