"""Stages `m2`, `m3` and `evaluate`: the metadata models and the report, from stored predictions.

They read M1's prediction tables (`predictions/m1/<split>.parquet`), never images (paper Figure 3:
M2 and M3 start from M1's top-10 cells).
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig
from geoloc_tf.run_layout import RunLayout


def _mesh(run_dir: Path):
    import mesh

    return mesh.Mesh.load(RunLayout(run_dir).mesh)


def m2_config(config: RunConfig):
    from geoloc_tf.m2.config import M2Config

    m2 = config.m2
    return M2Config(top_k=m2.top_k, hidden_units=m2.hidden_units, dropout=m2.dropout,
                    m1_prior=m2.m1_prior, extra_inputs=tuple(m2.extra_inputs),
                    learning_rates=tuple(m2.learning_rates),
                    boosting_rounds=m2.boosting_rounds, batch_size=m2.batch_size,
                    max_epochs=m2.max_epochs, early_stopping_patience=m2.early_stopping_patience,
                    early_stopping_metric=m2.early_stopping_metric)


def run_m2(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m2 import task

    layout = RunLayout(run_dir)
    artifacts = task.run(layout, _mesh(run_dir), m2_config(config), seed=config.data.seed,
                         top_k=config.predict.top_k)
    return {name: layout.relative(path) for name, path in artifacts.items()}


def run_m3(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m3 import task
    from geoloc_tf.m3.config import M3Config

    m3 = config.m3
    m3_config = M3Config(album_size=m3.album_size, lstm_units=m3.lstm_units,
                         init_from_m2=m3.init_from_m2, freeze_m2=m3.freeze_m2,
                         learning_rate=m3.learning_rate,
                         residual_output=m3.residual_output, album_evidence=m3.album_evidence,
                         batch_size=m3.batch_size,
                         max_epochs=m3.max_epochs,
                         early_stopping_patience=m3.early_stopping_patience,
                         early_stopping_metric=m3.early_stopping_metric)
    layout = RunLayout(run_dir)
    artifacts = task.run(layout, _mesh(run_dir), m3_config, m2_config(config),
                         seed=config.data.seed, top_k=config.predict.top_k)
    return {name: layout.relative(path) for name, path in artifacts.items()}


def run_evaluate(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from data_pipelines.splits import M23_VAL
    from experiments.stages.sources import is_simulated
    from geoloc_tf.averaging import write_averaging_predictions
    from geoloc_tf.evaluation.report import ReportConfig, evaluate_run
    from geoloc_tf.evaluation.results import EvalConfig
    from geoloc_tf.run_configs import EvaluateConfig

    layout = RunLayout(run_dir)
    write_averaging_predictions(layout.predictions_dir, M23_VAL, config.m3.album_size)
    _knn_predictions(config, run_dir, M23_VAL)
    evaluate = EvaluateConfig(thresholds_km=tuple(config.evaluate.thresholds_km),
                              outdoor_threshold=config.evaluate.outdoor_threshold,
                              knn_k=config.evaluate.knn_k,
                              knn_bandwidth_km=config.evaluate.knn_bandwidth_km)
    report_config = ReportConfig(evaluation=EvalConfig.from_settings(
        evaluate, split=M23_VAL,
        mesh_name=f"mesh {config.mesh.refinement_limit}/{config.mesh.min_examples}"))
    written = evaluate_run(run_dir, mesh_path=layout.mesh, out_dir=layout.eval_dir,
                           config=report_config, simulated=is_simulated(config))
    return {name: layout.relative(path) for name, path in written.items()}


def _knn_predictions(config: RunConfig, run_dir: Path, split: str) -> None:
    """The "M1 kNN" row's table (`--evaluate_knn_k` > 0): each photo of `split` located from its
    nearest M1 training photos in M1's feature space (stored by --predict_store_features, which
    experiments.run checks); a stale table is removed when it is off."""
    from data_pipelines.splits import M1_TRAIN
    from geoloc_tf.retrieval.knn import KNN_MODEL, write_knn_predictions

    layout = RunLayout(run_dir)
    if config.evaluate.knn_k == 0:
        layout.prediction_table(KNN_MODEL, split).unlink(missing_ok=True)
        return
    write_knn_predictions(layout, split, config.evaluate.knn_k,
                          config.evaluate.knn_bandwidth_km, index_split=M1_TRAIN)


def run_export(config: RunConfig, run_dir: Path) -> dict[str, str]:
    """SavedModels of M1 (JPEG bytes in), M2 and M3 (M1's top-k + posting time in), each returning
    top-k cells, probabilities and the predicted lat/lon (imagery centroids, §3.1.2)."""
    import keras

    from geoloc_tf.m1.export import export_m1
    from geoloc_tf.m2.task import TrainedM2
    from geoloc_tf.m3.task import TrainedM3

    layout = RunLayout(run_dir)
    points = _mesh(run_dir).imagery_centroids
    k = config.export.top_k
    export_m1(keras.saving.load_model(layout.m1_model), points, str(layout.export("m1")), top_k=k)
    TrainedM2.load(layout).export(points, layout.export("m2"), k)
    TrainedM3.load(layout).export(points, layout.export("m3"), k)
    return {name: layout.relative(layout.export(name)) for name in ("m1", "m2", "m3")}
