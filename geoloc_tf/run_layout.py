"""Where each artifact of a run directory lives: the one module that spells a run path.

    RUN_DIR/
      config.json                    the resolved settings (written by the runner)
      stages/<stage>.json            a finished stage's record (fingerprint, artifacts)
      logs/run.log
      mesh/                          mesh.npz, mesh.geojson, summary.json, mesh.png (``mesh.build``)
      mesh/partition_x<factor>/      the same files for each extra, coarser partition
                                     (--mesh_partition_factors, ``mesh.partitions``)
      data/                          the ingested TFRecords and tables (``data_pipelines``)
      m1/                            m1.keras, history.json, checkpoints/
      m2/, m3/                       <model>.keras, history.json, config.json (the task's settings)
      predictions/<model>/<split>.parquet   every model's per-photo predictions, one format
      eval/                          report.md, tables.json, results.json, PNG plots
      eval_external/<test set>/      `geoloc evaluate` on an external test set
      export/m1, export/m2, export/m3      SavedModels
      export/m1.tflite, export/m1.onnx     M1 for LiteRT and ONNX Runtime (geoloc_tf.m1.portable)
      export/m1.check.json           how closely those match the SavedModel (the export stage)
      tensorboard/<stage>/
      index/<split>/                 M1's features of a split (the predict stage with
                                     --predict_store_features, or `geoloc index`): the one store
                                     that the kNN row and `geoloc search` read

Everything else asks ``RunLayout(run_dir)`` for a path (``layout.m1_model``,
``layout.prediction_table("m2", "m23_val")``) and never joins ``"m1"`` and ``"m1.keras"`` itself.
Imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

from mesh.mesh import GEOJSON_FILE, MESH_FILE, PLOT_FILE, SUMMARY_FILE
from mesh.partitions import partition_folder

#: The models that have a folder with a ``<name>.keras`` file.
MODELS: tuple[str, ...] = ("m1", "m2", "m3")
PREDICTIONS = "predictions"
MODEL_SUFFIX = ".keras"
HISTORY_FILE = "history.json"
TASK_CONFIG_FILE = "config.json"
TABLE_SUFFIX = ".parquet"
#: The files of a report folder (``geoloc_tf.evaluation.report``: eval/ or an external test set's).
REPORT_FILE = "report.md"
RESULTS_FILE = "results.json"
TABLES_FILE = "tables.json"
#: The file suffix of each runtime format an exported model is written in besides the SavedModel
#: (``geoloc_tf.m1.portable``); a model path with one of these suffixes is such a file.
PORTABLE_SUFFIXES: dict[str, str] = {"litert": ".tflite", "onnx": ".onnx"}
EXPORT_CHECK_SUFFIX = ".check.json"


def prediction_table_path(predictions_dir: str | os.PathLike, model: str, split: str) -> Path:
    """``predictions_dir/<model>/<split>.parquet``: one model's predictions on one split."""
    return Path(predictions_dir) / model / f"{split}{TABLE_SUFFIX}"


def model_file_name(model: str) -> str:
    """``<model>.keras``: the file of a trained model inside its folder."""
    return f"{model}{MODEL_SUFFIX}"


class RunLayout:
    """The paths of one run directory (nothing is created or checked here)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.root = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunLayout({str(self.root)!r})"

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to the run directory, as stage records list artifacts."""
        return str(Path(path).relative_to(self.root))

    # ------------------------------------------------------------------ the runner's own files
    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def stages_dir(self) -> Path:
        return self.root / "stages"

    def stage_record(self, stage: str) -> Path:
        return self.stages_dir / f"{stage}.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "run.log"

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / "tensorboard"

    def tensorboard(self, stage: str) -> Path:
        return self.tensorboard_dir / stage

    # ------------------------------------------------------------------ mesh and data
    @property
    def mesh_dir(self) -> Path:
        return self.root / "mesh"

    @property
    def mesh(self) -> Path:
        return self.mesh_dir / MESH_FILE

    @property
    def mesh_geojson(self) -> Path:
        return self.mesh_dir / GEOJSON_FILE

    @property
    def mesh_summary(self) -> Path:
        return self.mesh_dir / SUMMARY_FILE

    @property
    def mesh_plot(self) -> Path:
        return self.mesh_dir / PLOT_FILE

    def mesh_partition_dir(self, factor: int) -> Path:
        """The mesh folder of the extra partition of ``factor`` (``MeshConfig.partition_factors``)."""
        return self.mesh_dir / partition_folder(factor)

    def mesh_partition(self, factor: int) -> Path:
        """The extra partition of ``factor`` itself (``Mesh.save`` format)."""
        return self.mesh_partition_dir(factor) / MESH_FILE

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    # ------------------------------------------------------------------ models
    def model_dir(self, model: str) -> Path:
        """``m1/``, ``m2/`` or ``m3/``."""
        return self.root / model

    def model_file(self, model: str) -> Path:
        """The trained Keras model, ``<model>/<model>.keras``."""
        return self.model_dir(model) / model_file_name(model)

    def history(self, model: str) -> Path:
        return self.model_dir(model) / HISTORY_FILE

    def task_config(self, model: str) -> Path:
        """The settings a metadata model was built with (``geoloc_tf.m2.task``, ``m3.task``)."""
        return self.model_dir(model) / TASK_CONFIG_FILE

    @property
    def m1_dir(self) -> Path:
        return self.model_dir("m1")

    @property
    def m1_model(self) -> Path:
        return self.model_file("m1")

    @property
    def m1_history(self) -> Path:
        return self.history("m1")

    @property
    def m2_dir(self) -> Path:
        return self.model_dir("m2")

    @property
    def m2_model(self) -> Path:
        return self.model_file("m2")

    @property
    def m3_dir(self) -> Path:
        return self.model_dir("m3")

    @property
    def m3_model(self) -> Path:
        return self.model_file("m3")

    # ------------------------------------------------------------------ predictions
    @property
    def predictions_dir(self) -> Path:
        return self.root / PREDICTIONS

    def prediction_dir(self, model: str) -> Path:
        return self.predictions_dir / model

    def prediction_table(self, model: str, split: str) -> Path:
        return prediction_table_path(self.predictions_dir, model, split)

    def prediction_parts(self, model: str, split: str) -> Path:
        """Where a resumable prediction keeps one table per finished record shard of ``split``."""
        return self.prediction_dir(model) / "_parts" / split

    def prediction_tables(self, split: str) -> dict[str, list[Path]]:
        """``{model: [table per part]}`` for every model folder holding a table of each part of
        ``split`` (``a+b`` names several splits), folders in name order."""
        if not self.predictions_dir.is_dir():
            return {}
        found = {}
        for folder in sorted(p for p in self.predictions_dir.iterdir() if p.is_dir()):
            paths = [self.prediction_table(folder.name, part) for part in split.split("+")]
            if all(p.is_file() for p in paths):
                found[folder.name] = paths
        return found

    # ------------------------------------------------------------------ evaluation and export
    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def eval_report(self) -> Path:
        return self.eval_dir / REPORT_FILE

    @property
    def eval_results(self) -> Path:
        return self.eval_dir / RESULTS_FILE

    @property
    def eval_tables(self) -> Path:
        return self.eval_dir / TABLES_FILE

    def eval_external(self, test_set: str) -> Path:
        """Where `geoloc evaluate` reports on an external test set by default."""
        return self.root / "eval_external" / test_set

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    def stage_dir(self, stage: str) -> Path:
        """The folder a stage of the run writes into (made before the stage runs)."""
        return {
            "mesh": self.mesh_dir,
            "data": self.data_dir,
            "m1": self.m1_dir,
            "predict": self.predictions_dir,
            "m2": self.m2_dir,
            "m3": self.m3_dir,
            "evaluate": self.eval_dir,
            "export": self.export_dir,
        }.get(stage, self.root / stage)

    def export(self, model: str) -> Path:
        return self.export_dir / model

    def portable_export(self, model: str, runtime_format: str) -> Path:
        """``export/<model>.tflite`` (``litert``) or ``export/<model>.onnx`` (``onnx``)."""
        return self.export_dir / f"{model}{PORTABLE_SUFFIXES[runtime_format]}"

    def export_check(self, model: str) -> Path:
        """``export/<model>.check.json``: the portable files' outputs next to the SavedModel's."""
        return self.export_dir / f"{model}{EXPORT_CHECK_SUFFIX}"

    # ------------------------------------------------------------------ retrieval
    @property
    def index_root(self) -> Path:
        return self.root / "index"

    def index_dir(self, split: str) -> Path:
        """The feature index of ``split`` (``geoloc_tf.retrieval.feature_index``)."""
        return self.index_root / split

    @classmethod
    def of_model_file(cls, model_file: str | os.PathLike) -> "RunLayout":
        """The run a model file ``RUN_DIR/<model>/<model>.keras`` belongs to."""
        return cls(Path(model_file).parent.parent)

    @classmethod
    def of_export(cls, export_dir: str | os.PathLike) -> "RunLayout":
        """The run an export ``RUN_DIR/export/<model>`` (a folder, or a ``.tflite``/``.onnx`` file)
        belongs to."""
        return cls(Path(export_dir).parent.parent)
