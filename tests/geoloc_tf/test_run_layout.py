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
    layout = RunLayout(tmp_path)
    paths = [
        layout.config,
        layout.stage_record("m1"),
        layout.log_file,
        layout.tensorboard("m2"),
        layout.mesh,
        layout.mesh_geojson,
        layout.mesh_summary,
        layout.mesh_plot,
        layout.data_dir,
        layout.m1_model,
        layout.m1_history,
        layout.m2_model,
        layout.task_config("m2"),
        layout.m3_model,
        layout.task_config("m3"),
        layout.prediction_table("m1", "m23_val"),
        layout.prediction_parts("m1", "m23_val"),
        layout.eval_report,
        layout.eval_results,
        layout.eval_tables,
        layout.eval_external("im2gps3k"),
        layout.export("m1"),
        layout.index_dir("m1_train"),
    ]
    assert len(set(paths)) == len(paths)
    assert all(p.is_relative_to(tmp_path) for p in paths)
    assert layout.config != layout.task_config("m2")  # the runner's and M2's settings differ
    assert RunLayout.of_model_file(layout.m1_model).root == tmp_path
    assert RunLayout.of_export(layout.export("m1")).mesh == layout.mesh
    assert layout.relative(layout.m2_model) == "m2/m2.keras"
