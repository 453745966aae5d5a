"""Stage `evaluate`: the paper's tables, Wilcoxon tests, outdoor-only rows, user and album averaging
and plots (§3.1.3, Tables 3-7), from every model's stored predictions on the M2/M3 validation split;
beyond the paper, GeoScore, country/region/sub-region/city accuracy (truth: the data set's admin
columns where it has them), the rows on photographers absent from the training splits and on
photos with no training photo within ``--evaluate_near_duplicate_km``, all under the configured
Earth radius and threshold rule (``--evaluate_earth_radius_km``, ``--evaluate_threshold_rule``),
and two point predictors from M1's stored features: "M1 kNN" (``--evaluate_knn_k``) and "M1 Cell
Retrieval", retrieval inside M1's top cells (``--evaluate_cell_retrieval_cells``). The report says
which Keras backend trained and predicted (``environment``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from experiments.config import RunConfig
from experiments.stages.registry import STAGE_NAMES

log = logging.getLogger(__name__)


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from data_pipelines.ingest.layout import SUMMARY_FILE
    from data_pipelines.splits import M1_TRAIN, M23_VAL
    from geoloc_tf.averaging import write_averaging_predictions
    from geoloc_tf.evaluation.report import ReportConfig, evaluate_run
    from geoloc_tf.evaluation.results import EvalConfig
    from geoloc_tf.retrieval.cell_retrieval import CELL_RETRIEVAL_MODEL, write_cell_retrieval_predictions
    from geoloc_tf.retrieval.knn import KNN_MODEL, write_knn_predictions
    from geoloc_tf.run_layout import RunLayout

    layout = RunLayout(run_dir)
    evaluate = config.evaluate
    write_averaging_predictions(layout.predictions_dir, M23_VAL, config.m3.album_size)
    # The "M1 kNN" row (--evaluate_knn_k > 0): each photo located from its nearest M1 training
    # photos in M1's feature space (stored by --predict_store_features); a stale table is removed
    # when the row is off.
    if evaluate.knn_k:
        write_knn_predictions(
            layout,
            M23_VAL,
            evaluate.knn_k,
            evaluate.knn_bandwidth_km,
            index_split=M1_TRAIN,
            engine=evaluate.knn_engine,
        )
    else:
        layout.prediction_table(KNN_MODEL, M23_VAL).unlink(missing_ok=True)
    # The "M1 Cell Retrieval" row (--evaluate_cell_retrieval_cells > 0): each photo put where its
    # best-scoring M1 training photo inside M1's top cells lies; the photos that fell back to the
    # top cell's label point are logged and flagged in the table.
    if evaluate.cell_retrieval.cell_retrieval_cells:
        write_cell_retrieval_predictions(
            layout, M23_VAL, evaluate.cell_retrieval, index_split=M1_TRAIN, engine=evaluate.knn_engine
        )
    else:
        layout.prediction_table(CELL_RETRIEVAL_MODEL, M23_VAL).unlink(missing_ok=True)
    # The data set gives the admin columns and the training photographers and locations; a run whose
    # data set was deleted after prediction (the TFRecords are large) is evaluated without them.
    data_dir = layout.data_dir if (layout.data_dir / SUMMARY_FILE).exists() else None
    if data_dir is None:
        log.warning(
            "%s: no data set; no photographer-disjoint or near-duplicate rows, admin truth from the true points",
            layout.data_dir,
        )
    report_config = ReportConfig(
        evaluation=EvalConfig.from_settings(
            evaluate,
            split=M23_VAL,
            mesh_name=f"mesh {config.mesh.refinement_limit}/{config.mesh.min_examples}",
        )
    )
    written = evaluate_run(
        run_dir,
        environment=environment(run_dir),
        mesh_path=layout.mesh,
        out_dir=layout.eval_dir,
        config=report_config,
        simulated=config.data.simulated,
        data_dir=data_dir,
    )
    return {name: layout.relative(path) for name, path in written.items()}


#: The stages whose models and tables the report scores: those the registry lists from ``m1`` up to
#: the evaluation itself (``experiments.stages.registry``; the mesh and the data have no model).
MODEL_STAGES: tuple[str, ...] = STAGE_NAMES[STAGE_NAMES.index("m1") : STAGE_NAMES.index("evaluate")]


def environment(run_dir: Path) -> dict:
    """The Keras backend each of ``MODEL_STAGES`` ran on (its stage record), and the versions and
    devices of the run's latest invocation (``config.json``'s ``environment``)."""
    from experiments.stages.runner import read_record
    from geoloc_tf.run_layout import RunLayout

    records = {name: read_record(run_dir, name) for name in MODEL_STAGES}
    stages = {name: r["keras_backend"] for name, r in records.items() if r and r.get("keras_backend")}
    config = RunLayout(run_dir).config
    invocation = json.loads(config.read_text()).get("environment", {}) if config.exists() else {}
    invocation.pop("keras_backend", None)  # the stages' own are above
    return {"stages": stages, **invocation} if stages or invocation else {}
