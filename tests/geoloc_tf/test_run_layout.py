"""RunLayout: where each artifact of a run directory lives."""

from __future__ import annotations

from geoloc_tf.run_layout import RunLayout


def test_a_split_expression_finds_the_models_that_have_every_part(tmp_path):
    layout = RunLayout(tmp_path)
    for model, splits in (("m1", ("m23_train", "m23_val")), ("m2", ("m23_val",))):
        for split in splits:
            path = layout.prediction_table(model, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    assert list(layout.prediction_tables("m23_val")) == ["m1", "m2"]
    both = layout.prediction_tables("m23_train+m23_val")
    assert list(both) == ["m1"]  # M2 lacks the m23_train part
    assert both["m1"] == [
        layout.prediction_table("m1", "m23_train"),
        layout.prediction_table("m1", "m23_val"),
    ]
    assert RunLayout(tmp_path / "nothing_yet").prediction_tables("m23_val") == {}


def test_every_artifact_has_its_own_path_inside_the_run(tmp_path):
    """Each path is the one the module's tree (and the README's) documents: runs written before
    stay readable, and no two artifacts share a file."""
    layout = RunLayout(tmp_path)
    expected = {
        layout.config: "config.json",
        layout.stage_record("m1"): "stages/m1.json",
        layout.log_file: "logs/run.log",
        layout.tensorboard("m2"): "tensorboard/m2",
        layout.mesh: "mesh/mesh.npz",
        layout.mesh_geojson: "mesh/mesh.geojson",
        layout.mesh_summary: "mesh/summary.json",
        layout.mesh_plot: "mesh/mesh.png",
        layout.mesh_partition(4): "mesh/partition_x4/mesh.npz",
        layout.data_dir: "data",
        layout.m1_model: "m1/m1.keras",
        layout.m1_history: "m1/history.json",
        layout.m2_model: "m2/m2.keras",
        layout.task_config("m2"): "m2/config.json",
        layout.m3_model: "m3/m3.keras",
        layout.task_config("m3"): "m3/config.json",
        layout.prediction_table("m1", "m23_val"): "predictions/m1/m23_val.parquet",
        layout.prediction_parts("m1", "m23_val"): "predictions/m1/_parts/m23_val",
        layout.eval_report: "eval/report.md",
        layout.eval_results: "eval/results.json",
        layout.eval_tables: "eval/tables.json",
        layout.eval_external("im2gps3k"): "eval_external/im2gps3k",
        layout.export("m1"): "export/m1",
        layout.portable_export("m1", "litert"): "export/m1.tflite",
        layout.portable_export("m1", "onnx"): "export/m1.onnx",
        layout.export_check("m1"): "export/m1.check.json",
        layout.index_dir("m1_train"): "index/m1_train",
    }
    assert len(expected) == 27  # no two artifacts share a path (a dict keeps one of equal keys)
    assert {layout.relative(path): text for path, text in expected.items()} == {
        text: text for text in expected.values()
    }
    assert RunLayout.of_model_file(layout.m1_model).root == tmp_path
    assert RunLayout.of_export(layout.export("m1")).root == tmp_path
    assert RunLayout.of_export(layout.portable_export("m1", "onnx")).root == tmp_path
