"""Stages `m2`, `m3` and `evaluate`: the metadata models and the report, from stored predictions.

They read M1's prediction tables (`predictions/m1/<split>.parquet`), never images (paper Figure 3:
M2 and M3 start from M1's top-10 cells).
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def _mesh(run_dir: Path):
    import mesh

    return mesh.Mesh.load(run_dir / "mesh" / "mesh.npz")


def m2_config(config: RunConfig):
    from geoloc_tf.m2.config import M2Config

    m2 = config.m2
    return M2Config(top_k=m2.top_k, hidden_units=m2.hidden_units, dropout=m2.dropout,
                    m1_prior=m2.m1_prior, extra_inputs=tuple(m2.extra_inputs),
                    learning_rates=tuple(m2.learning_rates),
                    boosting_rounds=m2.boosting_rounds, batch_size=m2.batch_size,
                    max_epochs=m2.max_epochs, early_stopping_patience=m2.early_stopping_patience,
                    early_stopping_metric=m2.early_stopping_metric,
                    seed=config.data.seed)


def run_m2(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m2.pipeline import run_m2 as train_and_predict

    artifacts = train_and_predict(run_dir / "predictions", _mesh(run_dir), run_dir / "m2",
                                  run_dir / "tensorboard" / "m2", m2_config(config),
                                  top_k=config.predict.top_k)
    return {name: str(Path(path).relative_to(run_dir)) for name, path in artifacts.items()}


def run_m3(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m3.config import M3Config
    from geoloc_tf.m3.pipeline import run_m3 as train_and_predict

    m3 = config.m3
    m3_config = M3Config(m2=m2_config(config), album_size=m3.album_size, lstm_units=m3.lstm_units,
                         init_from_m2=m3.init_from_m2, freeze_m2=m3.freeze_m2,
                         learning_rate=m3.learning_rate,
                         residual_output=m3.residual_output, album_evidence=m3.album_evidence,
                         batch_size=m3.batch_size,
                         max_epochs=m3.max_epochs,
                         early_stopping_patience=m3.early_stopping_patience,
                         early_stopping_metric=m3.early_stopping_metric, seed=config.data.seed)
    artifacts = train_and_predict(run_dir / "predictions", _mesh(run_dir), run_dir / "m3",
                                  run_dir / "tensorboard" / "m3", m3_config,
                                  run_dir / "m2" / "m2.keras", top_k=config.predict.top_k)
    return {name: str(Path(path).relative_to(run_dir)) for name, path in artifacts.items()}


def run_evaluate(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from data_pipelines.splits import M23_VAL
    from experiments.stages.sources import is_simulated
    from geoloc_tf.averaging import write_averaging_predictions
    from geoloc_tf.evaluation.report import ReportConfig, evaluate_run
    from geoloc_tf.evaluation.results import EvalConfig

    write_averaging_predictions(run_dir / "predictions", M23_VAL, config.m3.album_size)
    _knn_predictions(config, run_dir, M23_VAL)
    report_config = ReportConfig(evaluation=EvalConfig(
        split=M23_VAL, thresholds_km=tuple(config.evaluate.thresholds_km),
        outdoor_threshold=config.evaluate.outdoor_threshold,
        mesh_name=f"mesh {config.mesh.refinement_limit}/{config.mesh.min_examples}"))
    written = evaluate_run(run_dir, mesh_path=run_dir / "mesh" / "mesh.npz", out_dir=run_dir / "eval",
                           config=report_config, simulated=is_simulated(config))
    return {name: str(Path(path).relative_to(run_dir)) for name, path in written.items()}


def _knn_predictions(config: RunConfig, run_dir: Path, split: str) -> None:
    """The "M1 kNN" row's table (`--evaluate_knn_k` > 0): each photo of `split` located from its
    nearest M1 training photos in M1's feature space (stored by --predict_store_features, which
    experiments.run checks); a stale table is removed when it is off."""
    from data_pipelines.splits import M1_TRAIN
    from geoloc_tf import prediction_tables
    from geoloc_tf.retrieval.knn import KNN_MODEL, write_knn_predictions

    predictions = run_dir / "predictions"
    if config.evaluate.knn_k == 0:
        prediction_tables.table_path(predictions, KNN_MODEL, split).unlink(missing_ok=True)
        return
    write_knn_predictions(predictions, split, config.evaluate.knn_k,
                          config.evaluate.knn_bandwidth_km, index_split=M1_TRAIN)


def run_export(config: RunConfig, run_dir: Path) -> dict[str, str]:
    """SavedModels of M1 (JPEG bytes in), M2 and M3 (M1's top-k + posting time in), each returning
    top-k cells, probabilities and the predicted lat/lon (imagery centroids, §3.1.2)."""
    import keras

    from geoloc_tf.m1.export import export_m1
    from geoloc_tf.metadata_export import export_metadata_model

    points = _mesh(run_dir).imagery_centroids
    out = run_dir / "export"
    k = config.export.top_k
    export_m1(keras.saving.load_model(run_dir / "m1" / "m1.keras"), points, str(out / "m1"), top_k=k)
    for name, album in (("m2", False), ("m3", True)):
        model = keras.saving.load_model(run_dir / name / f"{name}.keras")
        export_metadata_model(model, points, str(out / name), album=album, top_k=k)
    return {name: f"export/{name}" for name in ("m1", "m2", "m3")}
