"""The evaluation report of a run: ``eval/report.md``, the tables as CSV and JSON, PNG plots.

What a researcher reads after a run (paper §3.1.3, §4, Tables 3-7, appendix C, Figures 1-2). All of
it is computed from the stored prediction tables (``predictions/<model>/<split>.parquet``) and the
mesh, so every model is scored by the same code; M2/M3/averaging rows appear only when their tables
exist. A report made from simulated data (the demo collection) says so at its top.

Files written, each atomically, into ``out_dir`` (default ``run_dir/eval``):
``report.md``, ``results.json`` (everything; read by ``compare``), ``tables.json``,
``table3.csv``, ``table4.csv``, ``table6.csv``, ``table7.csv``, ``wilcoxon.csv``, ``differences.csv``
(paired differences B - A with 95 % intervals), ``admin.csv``
(country / region / sub-region / city accuracy), ``leakage.csv`` and ``near_duplicates.csv`` (with
the run's data set),
``figure1_longitude_by_hour.png``, ``figure2_mesh.png``, ``error_cdf.png``,
``accuracy_map_<model>.png``.

Where the run's models were trained and predicted (``environment``: the Keras backend of each stage,
its library's version, the devices) is stated under the report's heading and kept in
``results.json``; ``tables.json`` holds the numbers alone, the same on every backend.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation import plots
from geoloc_tf.evaluation.admin import read_admin_truth
from geoloc_tf.evaluation.leakage import TrainingPhotos, read_training_photos
from geoloc_tf.evaluation.model_predictions import discover_prediction_tables, load_predictions
from geoloc_tf.evaluation.results import EvalConfig, Evaluation, evaluate_predictions
from geoloc_tf.evaluation.tables import Table, all_tables, convention_line
from geoloc_tf.run_layout import REPORT_FILE, RESULTS_FILE, TABLES_FILE, RunLayout
from mesh import Mesh
from mesh.atomic import write_text_atomic
from mesh.plot import cell_polygons

#: The line put at the top of a report made from simulated data.
SIMULATED_NOTICE = (
    "**SIMULATED DATA.** This report was made from a data set with simulated users, posting "
    "times and/or indoor photos (the geoloc demo collection): its numbers are not results on "
    "real photos and must not be compared with the paper's."
)


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """What the report contains: the evaluation settings plus the plots' settings."""

    evaluation: EvalConfig = EvalConfig()
    accuracy_map_threshold_km: float = 750.0  # Country (§3.1.3)
    seed: int = 0  # the random photo per user of Figure 1
    plots: bool = True


def _json_safe(value: Any) -> Any:
    """NaN/inf become null so the JSON is standard."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_json(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(_json_safe(value), indent=2) + "\n")


def write_plots(evaluation: Evaluation, mesh: Mesh, out_dir: Path, config: ReportConfig) -> dict[str, str]:
    """Figures 1-2, the error CDF and one accuracy-per-cell map per model; returns name -> file."""
    results = evaluation.results
    ref = evaluation.predictions[results["reference_model"]]
    files = {}
    path = out_dir / "figure1_longitude_by_hour.png"
    plots.plot_longitude_by_hour(ref.user_hash, ref.posted_at, ref.lon, path, seed=config.seed)
    files["figure1"] = path.name
    from mesh.plot import plot_mesh

    path = out_dir / "figure2_mesh.png"
    plot_mesh(mesh, ref.lat, ref.lon, path)
    files["figure2"] = path.name
    path = out_dir / "error_cdf.png"
    plots.plot_error_cdf(
        {results["models"][m]["display_name"]: d for m, d in evaluation.errors_km.items()},
        results["thresholds_km"],
        path,
        title=f"Error CDF ({results['label_point']} centroid, split {results['split']})",
    )
    files["error_cdf"] = path.name
    polygons = cell_polygons(mesh)
    for model, d in evaluation.errors_km.items():
        pred = evaluation.predictions[model]
        path = out_dir / f"accuracy_map_{model}.png"
        plots.plot_accuracy_map(
            mesh,
            evaluation.true_cell[model],
            d,
            pred.lat,
            pred.lon,
            config.accuracy_map_threshold_km,
            path,
            title=f"{results['models'][model]['display_name']}: photos within {config.accuracy_map_threshold_km:g} km "
            f"per cell (true cell; {results['label_point']} centroid)",
            polygons=polygons,
        )
        files[f"accuracy_map_{model}"] = path.name
    return files


def render_markdown(results: dict[str, Any], tables: list[Table], figures: dict[str, str]) -> str:
    """``report.md``: notice (if any), what was evaluated, the tables, the figures."""
    lines = []
    if results.get("notice"):
        lines += [f"> {results['notice']}", ""]
    lines += ["# geoloc evaluation report", ""]
    if results.get("environment"):
        lines += [environment_line(results["environment"]), ""]
    lines.append(
        f"Split `{results['split']}`; mesh with {results['num_cells']:,} cells; label point of Tables 4, 6, 7 "
        f"and the Wilcoxon tests: {results['label_point']} centroid; outdoor threshold "
        f"{results['outdoor_threshold']:g}; thresholds {', '.join(f'{t:g}' for t in results['thresholds_km'])} km."
    )
    lines.append("")
    lines.append("| Model | Table | Photos | In dropped cells | Without prediction |")
    lines.append("|---|---|---:|---:|---:|")
    for m, r in results["models"].items():
        lines.append(
            f"| {r['display_name']} | `{os.path.basename(r['source']) or m}` ({m}) | {r['num_photos']:,} | "
            f"{r['num_in_dropped_cells']:,} | {r['num_without_prediction']:,} |"
        )
    lines.append("")
    for r in results["models"].values():
        if r.get("num_fallback") is not None:
            share = r["num_fallback"] / max(r["num_photos"], 1)
            lines += [
                f"{r['display_name']}: {r['num_fallback']:,} of {r['num_photos']:,} photos "
                f"({share:.1%}) had no retrieved photo in the top cells and got the top cell's "
                "label point (fallback).",
                "",
            ]
    lines += [convention_line(results), ""]
    for t in tables:
        lines.append(t.to_markdown())
    if figures:
        lines += ["## Figures", ""]
        captions = {
            "figure1": "Figure 1: true longitude vs UTC posting hour (one random photo per user)",
            "figure2": "Figure 2: the mesh (kept cells red)",
            "error_cdf": "Error CDF of every model",
        }
        for key, name in figures.items():
            model = results["models"].get(key.removeprefix("accuracy_map_"), {}).get("display_name", key)
            caption = captions.get(key, f"Accuracy per cell: {model}")
            lines += [f"**{caption}**", "", f"![{caption}]({name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def environment_line(environment: Mapping[str, Any]) -> str:
    """One line of the report: the Keras backend each stage ran on (``stages``: stage -> backend),
    then the libraries' versions (``<library>_version``) and the devices, where given."""
    by_backend: dict[str, list[str]] = {}
    for stage, backend in environment.get("stages", {}).items():
        by_backend.setdefault(backend, []).append(stage)
    parts = [
        "Keras backend: " + ("; ".join(f"{b} ({', '.join(s)})" for b, s in by_backend.items()) or "unknown")
    ]
    versions = [
        f"{key.removesuffix('_version')} {value}"
        for key, value in environment.items()
        if key.endswith("_version") and value
    ]
    if versions:
        parts.append(", ".join(versions))
    if environment.get("devices"):
        parts.append(f"devices {', '.join(map(str, environment['devices']))}")
    return "; ".join(parts) + "."


def write_report(
    evaluation: Evaluation,
    mesh: Mesh,
    out_dir: str | os.PathLike,
    config: ReportConfig = ReportConfig(),
    simulated: bool = False,
    notice: str | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Write every report file into ``out_dir`` (see module docstring); returns artifact -> path.

    ``simulated`` puts ``SIMULATED_NOTICE`` at the top; ``notice`` is more text for the top, after it.
    ``environment``: what computed the predictions (``environment_line``), in report.md and
    results.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = dict(evaluation.results)
    results["simulated"] = bool(simulated)
    results["notice"] = "\n\n".join(t for t in (SIMULATED_NOTICE if simulated else "", notice or "") if t)
    if environment:
        results["environment"] = dict(environment)
    tables = all_tables(results)
    artifacts: dict[str, str] = {}
    for t in tables:
        path = out / f"{t.key}.csv"
        write_text_atomic(path, t.to_csv())
        artifacts[t.key] = str(path)
    _write_json(out / TABLES_FILE, {"notice": results["notice"], "tables": [t.to_dict() for t in tables]})
    artifacts["tables_json"] = str(out / TABLES_FILE)
    figures = write_plots(evaluation, mesh, out, config) if config.plots else {}
    artifacts.update({k: str(out / v) for k, v in figures.items()})
    _write_json(out / RESULTS_FILE, results)
    artifacts["results"] = str(out / RESULTS_FILE)
    write_text_atomic(out / REPORT_FILE, render_markdown(results, tables, figures))
    artifacts["report"] = str(out / REPORT_FILE)
    return artifacts


def evaluate_run(
    run_dir: str | os.PathLike,
    mesh_path: str | os.PathLike | None = None,
    tables: Mapping[str, str | os.PathLike | list[str | os.PathLike]] | None = None,
    out_dir: str | os.PathLike | None = None,
    config: ReportConfig = ReportConfig(),
    simulated: bool = False,
    notice: str | None = None,
    outdoor_probs: Mapping[str, float] | None = None,
    data_dir: str | os.PathLike | None = None,
    training: TrainingPhotos | None = None,
    admin_truth: pd.DataFrame | None = None,
    environment: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Evaluate a run directory and write its report; returns artifact -> path.

    ``data_dir``: the run's ingested data set; its evaluated split's admin columns (when it has
    them) are the truth of the admin-level accuracy, and its training splits (``leakage``) give the
    photographer-disjoint rows and the rows without near-duplicates. ``training`` and ``admin_truth`` give those directly instead (an
    external test set: ``training`` from the run's data set, its user ids hashed with that data
    set's salt, ``leakage.training_user_hasher``).

    ``mesh_path``: a ``Mesh.save`` file or a directory holding ``mesh.npz`` (default
    ``run_dir/mesh``). ``tables``: ``{model: parquet path or [paths]}`` (default: every
    ``run_dir/predictions/<model>/<config.evaluation.split>.parquet``; a split ``a+b`` joins parts). ``out_dir`` defaults to
    ``run_dir/eval``. ``outdoor_probs``: photo_id -> outdoor probability (e.g. from
    ``outdoor.scene_outdoor_probs``) replacing the tables' ``outdoor_prob`` column.
    ``environment``: what computed the predictions (``write_report``).
    """
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    mesh = Mesh.load(mesh_path if mesh_path is not None else layout.mesh)
    found = (
        dict(tables) if tables is not None else discover_prediction_tables(run_dir, config.evaluation.split)
    )
    if not found:
        raise EvaluationError(
            f"{layout.predictions_dir}: no <model>/{config.evaluation.split}.parquet tables; expected the predict "
            "stage's output (or pass tables={model: path})"
        )
    if data_dir is not None:
        if admin_truth is None and config.evaluation.admin_accuracy:
            admin_truth = read_admin_truth(data_dir, config.evaluation.split)
        if training is None:
            training = read_training_photos(data_dir)
    evaluation = evaluate_predictions(
        load_predictions(found), mesh, config.evaluation, outdoor_probs, admin_truth, training
    )
    return write_report(
        evaluation,
        mesh,
        out_dir if out_dir is not None else layout.eval_dir,
        config,
        simulated=simulated,
        notice=notice,
        environment=environment,
    )
