"""`geoloc` subcommands: options derived from the settings declarations, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipelines.config import IngestConfig
from experiments.cli import main as geoloc
from experiments.commands import command_flags, run_command
from experiments.commands import ingest as ingest_command
from experiments.settings_flags import configs_from_flags, parse
from mesh.settings import flat_settings

# A value other than the default for every data setting, as typed on the command line, and the
# value the setting must then hold.
NON_DEFAULT = {
    "source": ("metadata", "metadata"),  # the other choice (demo) forbids metadata/images below
    "demo_size": ("small", "small"),
    "format": ("csv", "csv"),
    "album_key": ("sequence", "sequence"),
    "metadata": ("a.tsv,b.csv", ("a.tsv", "b.csv")),
    "images": ("photos", "photos"),
    "autotags": ("tags.txt", ("tags.txt",)),
    "image_path_template": ("{hash}.jpg", "{hash}.jpg"),
    "max_image_side": ("256", 256),
    "jpeg_quality": ("80", 80),
    "max_pixels": ("123456", 123456),
    "examples_per_shard": ("7", 7),
    "workers": ("3", 3),
    "salt": ("pepper", "pepper"),
    "log_first_skips": ("2", 2),
    "max_line_bytes": ("4096", 4096),
    "max_field_bytes": ("2048", 2048),
    "dataset_name": ("photos_b", "photos_b"),
    "engine": ("beam", "beam"),
    "beam_pipeline_options": ("--runner=FlinkRunner --parallelism=4", "--runner=FlinkRunner --parallelism=4"),
    "seed": ("5", 5),
    "m1_val_fraction": ("0.5", 0.5),
    "m23_val_fraction": ("0.3", 0.3),
    "split_by": ("user", "user"),
}


def test_every_ingest_option_reaches_its_setting():
    assert sorted(NON_DEFAULT) == sorted(path[-1] for path, _, _ in flat_settings(IngestConfig))
    command = ingest_command.COMMAND
    flag_values = command_flags(command)
    parse(
        flag_values,
        ["geoloc ingest", "--out=o"] + [f"--{name}={text}" for name, (text, _) in NON_DEFAULT.items()],
    )
    config = configs_from_flags(flag_values, command.sections)[""]
    got = {
        name: getattr(config.splits if hasattr(config.splits, name) else config, name) for name in NON_DEFAULT
    }
    assert got == {name: value for name, (_, value) in NON_DEFAULT.items()}


def test_ingest_reports_a_bad_value_or_combination_in_one_line(tmp_path, capsys):
    assert geoloc(["ingest", f"--out={tmp_path}", "--max_image_side=8"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: flag --max_image_side=8: must be >= 32"]
    assert geoloc(["ingest", f"--out={tmp_path / 'o'}", "--source=demo", "--metadata=x.tsv"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --source=demo brings its own photos and metadata: drop --metadata"
    ]
    assert not (tmp_path / "o").exists()


def test_ingest_bad_input_prints_one_clear_line(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rc = geoloc(
        ["ingest", f"--metadata={tmp_path}/missing.tsv", f"--images={images}", f"--out={tmp_path}/out"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "missing.tsv" in err[0] and "expected" in err[0]
    bad = tmp_path / "bad.tsv"
    bad.write_text("only\tthree\tfields\n")
    rc = geoloc(["ingest", f"--metadata={bad}", f"--images={images}", f"--out={tmp_path}/out2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith(f"error: {bad}:1:") and "expected 23" in err[-1]


def test_same_setting_same_name_in_runner_and_tool():
    """The runner's --data_<name> is the tool's --<name>: the same help and default, and the same
    value typed into either reaches the same setting."""
    from absl import flags

    from experiments import flags as runner_flags
    from experiments.config import SECTIONS
    from experiments.settings_flags import define_setting_flags

    command = ingest_command.COMMAND
    tool = command_flags(command)
    for name in NON_DEFAULT:
        runner_flag = runner_flags.FLAGS[f"data_{name}"]
        assert (tool[name].help, tool[name].default) == (runner_flag.help, runner_flag.default), name
    # The runner's own definitions, on a fresh FlagValues so that absl's global FLAGS stay unparsed.
    runner = flags.FlagValues()
    define_setting_flags(runner, SECTIONS)
    parse(
        tool, ["geoloc ingest", "--out=o"] + [f"--{name}={text}" for name, (text, _) in NON_DEFAULT.items()]
    )
    parse(runner, ["run"] + [f"--data_{name}={text}" for name, (text, _) in NON_DEFAULT.items()])
    from_tool = configs_from_flags(tool, command.sections, command.only)[""]
    from_runner = configs_from_flags(runner, {"data": SECTIONS["data"]})["data"]
    assert from_runner == from_tool
    assert from_tool.jpeg_quality == 80 and from_tool.splits.seed == 5  # not both at their defaults


def test_unknown_option_and_missing_required_input_are_one_line(capsys):
    assert geoloc(["build-mesh", "--bogus"]) == 2
    assert capsys.readouterr().err.strip() == "error: Unknown command line flag 'bogus'"
    assert geoloc(["best-possible", "--coords=c.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--mesh" in err and "\n" not in err


def test_help_lists_settings_and_inputs(capsys):
    assert run_command(ingest_command.COMMAND, ["--help"]) == 0
    out = capsys.readouterr().out
    assert "--out:" in out and "--max_image_side:" in out and "--[no]" not in out


@pytest.mark.parametrize("args", [["--preset=fine", "--refinement_limit=-3"], ["--init_grid=1"]])
def test_build_mesh_bounds_come_from_the_declaration(tmp_path, capsys, args):
    coords = tmp_path / "c.csv"
    coords.write_text("latitude,longitude\n1,2\n")
    assert geoloc(["build-mesh", f"--coords={coords}", f"--out={tmp_path / 'm'}", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: flag --") and "must be >=" in err
    assert not Path(tmp_path / "m").exists()
