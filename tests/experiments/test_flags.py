"""Flagfile resolution, validators and the RunConfig built from flags."""

import subprocess
import sys
from pathlib import Path

import pytest

from experiments import flags as geoloc_flags
from experiments import settings_flags
from experiments.config import RunConfig
from experiments.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


#: A user's own collection: the presets need one (--data_source=metadata, the default).
DATA = ("--data_metadata=yfcc100m_dataset", "--data_images=images")


def parse(*args: str) -> RunConfig:
    geoloc_flags.parse(["prog", *args])
    return geoloc_flags.run_config_from_flags()


def test_bare_name_resolves_to_configs_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repo root: bare names still find the presets
    path = settings_flags.resolve_flagfile("coarse.cfg")
    assert path == REPO / "experiments" / "configs" / "coarse.cfg"


def test_presets_carry_table1_mesh_parameters():
    expected = {"coarse.cfg": (8000, 1000), "fine.cfg": (5000, 500), "fineP.cfg": (10000, 50)}
    for name, (limit, minimum) in expected.items():
        config = parse(f"--flagfile={name}", *DATA)
        assert (config.mesh.refinement_limit, config.mesh.min_examples) == (limit, minimum), name
        assert config.mesh.init_grid == 31
        assert config.m2.hidden_units == 542 * 3
        assert config.m3.album_size == 24
        assert config.m1.sampler.examples_per_cell == 200 and config.m1.sampler.epoch_growth == 0.06
    assert parse("--flagfile=coarse.cfg", *DATA).mesh.build_sample == 2_000_000


def test_path_flagfile_and_nested_bare_include(tmp_path):
    own = tmp_path / "mine.cfg"
    own.write_text("# my run\n--flagfile=fine.cfg\n\n// another comment\n--m2_dropout=0.25\n")
    config = parse(f"--flagfile={own}", *DATA)
    assert config.mesh.refinement_limit == 5000  # from the nested bare include
    assert config.m2.dropout == 0.25  # the including file's later line wins


def test_command_line_overrides_flagfile():
    config = parse("--flagfile=coarse.cfg", "--mesh_min_examples=7", *DATA)
    assert config.mesh.min_examples == 7


def test_missing_flagfile_names_places_and_presets():
    with pytest.raises(ConfigError) as error:
        parse("--flagfile=nope.cfg")
    message = str(error.value)
    assert "nope.cfg" in message and "coarse.cfg" in message and "fineP.cfg" in message


def test_self_including_flagfile_is_an_error(tmp_path):
    loop = tmp_path / "loop.cfg"
    loop.write_text(f"--flagfile={loop}\n")
    with pytest.raises(ConfigError, match="includes itself"):
        parse(f"--flagfile={loop}")


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("--m2_dropout=1.5", "must be < 1.0"),
        ("--m3_album_size=0", "must be >= 1"),
        ("--data_m1_val_fraction=0", "must be > 0.0"),
        ("--data_source=flickr", "must be one of metadata, demo"),
        ("--m1_alpha_schedule=0,x", "every value must be a float"),
        ("--m1_alpha_schedule=0,1.5", "must be <= 1.0"),
        ("--evaluate_thresholds_km=25,1", "strictly increasing"),
        ("--m2_extra_inputs=weather", "must be one of outdoor"),
        ("--stages=mesh,bogus", "unknown stage(s) bogus"),
        ("--m1_image_size=64", "must be >= 75"),
    ],
)
def test_validators_name_flag_value_and_rule(flag, expected):
    with pytest.raises(ConfigError) as error:
        parse(flag)
    assert flag.split("=")[0] in str(error.value)
    assert expected in str(error.value)


def test_bad_value_in_flagfile_names_file_and_line(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("--run_dir=x\n# comment\n--m3_album_size=-3\n")
    with pytest.raises(ConfigError, match=r"bad\.cfg:3: flag --m3_album_size=-3"):
        parse(f"--flagfile={cfg}")


def test_line_that_is_not_a_flag_is_reported(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("--run_dir=x\nm3_album_size=3\n")
    with pytest.raises(ConfigError, match=r"bad\.cfg:2: expected a flag"):
        parse(f"--flagfile={cfg}")


def test_tuple_and_optional_fields_convert():
    config = parse(
        "--m2_learning_rates=0.01,0.002", "--m2_extra_inputs=outdoor", "--mesh_coords=a.csv", *DATA
    )
    assert config.m2.learning_rates == (0.01, 0.002)
    assert config.m2.extra_inputs == ("outdoor",)
    assert config.mesh.coords == "a.csv"
    assert parse(*DATA).mesh.coords is None  # parse() starts again from the defaults


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_missing_flagfile_is_one_line_without_traceback():
    result = run_cli("--flagfile=nope.cfg")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: flagfile 'nope.cfg' not found")
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_invalid_value_is_one_line_without_traceback():
    result = run_cli("--flagfile=coarse.cfg", "--m2_dropout=2")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: flag --m2_dropout=2.0: must be < 1.0"


def test_short_aliases_for_the_distribution_settings():
    config = parse("--strategy=mirrored", "--mixed_precision", "--jit_compile", *DATA)
    assert config.runtime.strategy == "mirrored"
    assert config.runtime.mixed_precision and config.runtime.jit_compile


@pytest.mark.parametrize(
    "flags, named",
    [
        (("--m3_album_evidence", "--nom3_residual_output"), ("--m3_album_evidence", "--m3_residual_output")),
        (("--m3_freeze_m2", "--nom3_init_from_m2"), ("--m3_freeze_m2", "--m3_init_from_m2")),
        (("--m2_top_k=12", "--predict_top_k=10"), ("--m2_top_k", "--predict_top_k")),
        (
            ("--evaluate_knn_k=5", "--nopredict_store_features"),
            ("--evaluate_knn_k", "--predict_store_features"),
        ),
        (("--data_source=metadata",), ("--data_source", "--data_metadata", "--data_images")),
    ],
)
def test_combination_rules_run_when_flags_are_parsed(flags, named):
    """Rules that span settings fail at parsing, naming every flag involved, not in a stage."""
    with pytest.raises(ConfigError) as error:
        parse("--flagfile=demo.cfg", *flags)
    for flag in named:
        assert flag in str(error.value)


def test_allowed_combinations_parse():
    config = parse(
        "--flagfile=demo.cfg",
        "--nom3_album_evidence",
        "--nom3_residual_output",
        "--m2_top_k=10",
        "--predict_top_k=10",
    )
    assert not config.m3.residual_output and config.m2.top_k == config.predict.top_k


@pytest.mark.parametrize(
    "extra",
    [
        ["--m3_album_evidence", "--nom3_residual_output"],
        ["--m3_freeze_m2", "--nom3_init_from_m2"],
    ],
)
def test_cli_conflicting_flags_fail_fast_and_write_nothing(tmp_path, extra):
    run_dir = tmp_path / "run"
    result = run_cli("--flagfile=demo.cfg", "--data_demo_size=small", f"--run_dir={run_dir}", *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and extra[0] in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not run_dir.exists()


@pytest.mark.parametrize("under", ["", "sub/run"])
def test_cli_run_dir_that_is_a_file_is_refused(tmp_path, under):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    run_dir = a_file / under if under else a_file
    result = run_cli("--flagfile=demo.cfg", "--data_demo_size=small", f"--run_dir={run_dir}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert f"--run_dir={run_dir}" in result.stderr and "is a file" in result.stderr
    assert a_file.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [a_file]
