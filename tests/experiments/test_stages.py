"""Stage skipping, forcing, refusal of changed settings, and the registered-but-unimplemented stages."""

import dataclasses
import json
from pathlib import Path

import pytest

from experiments.config import RunConfig
from experiments.errors import StageError
from experiments.stages import STAGES, Stage, run_stages
from experiments.stages.runner import record_path
from mesh.config import MeshConfig

CALLS: list[str] = []


def writer(name: str):
    """A real stage: writes a file derived from its settings and upstream outputs."""

    def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
        CALLS.append(name)
        out = run_dir / name / "out.txt"
        upstream = "".join((run_dir / n / "out.txt").read_text() for n in ("a",) if name != "a")
        out.write_text(f"{name}:{config.mesh.refinement_limit}:{upstream}")
        return {"out": f"{name}/out.txt"}

    return run


TOY = (
    Stage("a", reads=("mesh",), needs=(), run=writer("a")),
    Stage("b", reads=("m2",), needs=("a",), run=writer("b")),
)


@pytest.fixture(autouse=True)
def clear_calls():
    CALLS.clear()


def run(config, run_dir, stages=("a", "b"), force=()):
    return run_stages(config, run_dir, stages, force, registry=TOY)


def test_second_run_skips_everything(tmp_path, run_config):
    config = run_config()
    first = run(config, tmp_path)
    assert [o.action for o in first] == ["ran", "ran"] and CALLS == ["a", "b"]
    second = run(config, tmp_path)
    assert [o.action for o in second] == ["skipped", "skipped"] and CALLS == ["a", "b"]
    record = json.loads(record_path(tmp_path, "b").read_text())
    assert record["settings"]["m2"]["hidden_units"] == config.m2.hidden_units
    assert record["settings"]["m2"]["learning_rates"] == list(config.m2.learning_rates)
    assert set(record["settings"]) == {"m2"}
    assert record["upstream"]["a"] == json.loads(record_path(tmp_path, "a").read_text())["token"]


def test_force_redoes_stage_and_what_needs_it(tmp_path, run_config):
    config = run_config()
    run(config, tmp_path)
    outcomes = run(config, tmp_path, force=("a",))
    assert [o.action for o in outcomes] == ["ran", "ran"]
    assert CALLS == ["a", "b", "a", "b"]


def test_forcing_downstream_only_keeps_upstream(tmp_path, run_config):
    config = run_config()
    run(config, tmp_path)
    outcomes = run(config, tmp_path, force=("b",))
    assert [o.action for o in outcomes] == ["skipped", "ran"]


def test_upstream_redone_in_an_earlier_invocation_makes_downstream_stale(tmp_path, run_config):
    config = run_config()
    run(config, tmp_path)
    run(config, tmp_path, stages=("a",), force=("a",))  # only a is redone
    outcomes = run(config, tmp_path)
    assert [o.action for o in outcomes] == ["skipped", "ran"]


def test_changed_settings_are_refused_with_the_flag_named(tmp_path, run_config):
    run(run_config(), tmp_path)
    changed = run_config(mesh=MeshConfig(refinement_limit=5000))
    with pytest.raises(StageError, match=r"--mesh_refinement_limit: 8000 -> 5000.*--force_stages=a"):
        run(changed, tmp_path)
    assert (tmp_path / "a" / "out.txt").read_text() == "a:8000:"  # nothing overwritten
    outcomes = run(changed, tmp_path, force=("a",))
    assert [o.action for o in outcomes] == ["ran", "ran"]
    assert (tmp_path / "b" / "out.txt").read_text() == "b:5000:a:5000:"


def _drop_from_record(run_dir: Path, stage: str, section: str, key: str) -> None:
    """Makes the stage's record look written before setting ``key`` existed (a record of an older
    geoloc): the key is removed and the fingerprint recomputed from what is left."""
    from experiments.stages.runner import fingerprint

    path = record_path(run_dir, stage)
    record = json.loads(path.read_text())
    del record["settings"][section][key]
    record["fingerprint"] = fingerprint(record["settings"])
    path.write_text(json.dumps(record))


def test_a_setting_added_since_a_stage_finished_counts_as_unchanged_at_its_default(tmp_path, run_config):
    run(run_config(), tmp_path)
    _drop_from_record(tmp_path, "a", "mesh", "partition_factors")
    assert [o.action for o in run(run_config(), tmp_path)] == ["skipped", "skipped"]
    # Set to anything but its default, the new setting is a change, named like any other.
    changed = run_config(mesh=MeshConfig(partition_factors=(4,)))
    with pytest.raises(StageError, match=r"--mesh_partition_factors: None -> \[4\]"):
        run(changed, tmp_path)


def test_defaults_come_from_the_declarations_even_where_defaults_alone_do_not_validate(run_config):
    """The data section's defaults (source=metadata without a file) cannot build an IngestConfig;
    the comparison reads them from the declarations. A setting missing from an older record is left
    out while it holds its declared default ('creator'), and compared once it does not."""
    from data_pipelines.config import IngestConfig
    from experiments.stages.runner import recorded_settings, stage_settings
    from mesh.settings import SettingError

    with pytest.raises(SettingError):
        IngestConfig()  # the premise: no instance to read the defaults from
    stage = Stage("d", reads=("data",), needs=(), run=writer("d"))

    def recorded_without_album_key(config):
        settings = stage_settings(stage, config)
        record = {"settings": {"data": {k: v for k, v in settings["data"].items() if k != "album_key"}}}
        return recorded_settings(stage, config, record)["data"], record["settings"]["data"]

    at_default, record = recorded_without_album_key(run_config())
    assert at_default == record and "album_key" not in at_default
    changed, record = recorded_without_album_key(
        run_config(data=IngestConfig(source="demo", album_key="sequence"))
    )
    assert changed == {**record, "album_key": "sequence"}


def test_settings_a_stage_does_not_read_do_not_matter(tmp_path, run_config):
    run(run_config(), tmp_path)
    outcomes = run(
        run_config(runtime=dataclasses.replace(run_config().runtime, strategy="mirrored")), tmp_path
    )
    assert [o.action for o in outcomes] == ["skipped", "skipped"]


def test_missing_artifact_reruns_the_stage(tmp_path, run_config):
    run(run_config(), tmp_path)
    (tmp_path / "b" / "out.txt").unlink()
    assert [o.action for o in run(run_config(), tmp_path)] == ["skipped", "ran"]


def test_an_upstream_artifact_damaged_since_written_is_one_error_naming_it(tmp_path, run_config, caplog):
    from experiments.errors import one_line, user_errors
    from mesh.integrity import WrittenFileError

    run(run_config(), tmp_path)
    record = json.loads(record_path(tmp_path, "a").read_text())
    out = tmp_path / "a" / "out.txt"
    assert record["checksums"]["a/out.txt"]["bytes"] == len(out.read_bytes())
    out.write_text(out.read_text().upper())  # same size, other bytes
    with pytest.raises(WrittenFileError) as raised:
        run(run_config(), tmp_path, force=("b",))
    assert isinstance(raised.value, user_errors())  # one `error:` line, exit status 2
    line = one_line(raised.value)
    assert line.startswith(f"error: {out}: sha256") and line.endswith("--force_stages=a")
    assert CALLS == ["a", "b"]  # b did not run on the damaged output
    assert [o.action for o in run(run_config(), tmp_path, force=("a",))] == ["ran", "ran"]
    # A record written before checksums: accepted, with a warning naming the file.
    del record["checksums"]
    record_path(tmp_path, "a").write_text(json.dumps(record))
    assert [o.action for o in run(run_config(), tmp_path, force=("b",))] == ["skipped", "ran"]
    assert f"{out}: written without a checksum" in caplog.text


def test_killed_stage_leaves_no_record_and_runs_again(tmp_path, run_config):
    def dies(config, run_dir):
        (run_dir / "a" / "partial.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stages(run_config(), tmp_path, ["a"], registry=(dataclasses.replace(TOY[0], run=dies),))
    assert not record_path(tmp_path, "a").exists()
    assert [o.action for o in run(run_config(), tmp_path, stages=("a",))] == ["ran"]


def test_needing_a_stage_that_never_ran_is_an_error(tmp_path, run_config):
    with pytest.raises(StageError, match="needs the outputs of stage\\(s\\) a"):
        run(run_config(), tmp_path, stages=("b",))


def test_registry_has_the_method_stages_in_order():
    assert [s.name for s in STAGES] == ["mesh", "data", "m1", "predict", "m2", "m3", "evaluate", "export"]
    names = [s.name for s in STAGES]
    for stage in STAGES:  # a stage only needs stages before it
        assert all(names.index(need) < names.index(stage.name) for need in stage.needs)
