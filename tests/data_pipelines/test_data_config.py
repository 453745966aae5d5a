"""The data section's declaration (IngestConfig + SplitConfig): cross-field rules at construction,
and `geoloc ingest`'s options, which are its settings under their own names."""

from __future__ import annotations

import pytest

from data_pipelines.config import IngestConfig, SplitConfig
from data_pipelines.ingest import cli
from mesh.settings import SettingError, flat_settings


def as_flags(error: SettingError) -> str:
    return error.render(lambda field: f"--data_{field}")


@pytest.mark.parametrize("kwargs, expected", [
    ({}, "--data_source=metadata needs --data_metadata=FILE[,FILE...]"),
    ({"metadata": ("a.tsv",)}, "and --data_images=DIR"),
    ({"source": "demo", "metadata": ("a.tsv",), "autotags": ("t",)},
     "--data_source=demo brings its own photos and metadata: drop --data_metadata and "
     "--data_autotags"),
    ({"source": "demo", "image_path_template": "{id}.png"}, "drop --data_image_path_template"),
    ({"source": "demo", "task_index": 2, "num_tasks": 2, "salt": "s"},
     "--data_task_index=2: expected < --data_num_tasks=2"),
    ({"source": "demo", "num_tasks": 3}, "--data_num_tasks > 1 needs an explicit --data_salt"),
    ({"source": "demo", "max_image_side": 16}, "--data_max_image_side=16: must be >= 32"),
])
def test_bad_combinations_fail_at_construction_naming_the_settings(kwargs, expected):
    with pytest.raises(SettingError) as error:
        IngestConfig(**kwargs)
    assert expected in as_flags(error.value)


def test_split_settings_reach_the_split_decision():
    splits = SplitConfig(m1_val_fraction=0.25, split_by="user")
    assert splits.m1_train_fraction == 0.75
    with pytest.raises(SettingError, match="split_by='album': must be one of photo, user"):
        SplitConfig(split_by="album")
    with pytest.raises(SettingError, match="m1_val_fraction=0.0: must be > 0.0"):
        SplitConfig(m1_val_fraction=0.0)


# A value other than the default for every setting, as typed on the command line.
NON_DEFAULT = {
    "source": ("metadata", "metadata"),  # the other choice (demo) forbids metadata/images below
    "demo_size": ("small", "small"),
    "metadata": ("a.tsv,b.csv", ("a.tsv", "b.csv")),
    "images": ("photos", "photos"),
    "autotags": ("tags.txt", ("tags.txt",)),
    "image_path_template": ("{hash}.jpg", "{hash}.jpg"),
    "max_image_side": ("256", 256),
    "jpeg_quality": ("80", 80),
    "examples_per_shard": ("7", 7),
    "workers": ("3", 3),
    "salt": ("pepper", "pepper"),
    "log_first_skips": ("2", 2),
    "dataset_name": ("photos_b", "photos_b"),
    "task_index": ("1", 1),
    "num_tasks": ("2", 2),
    "seed": ("5", 5),
    "m1_val_fraction": ("0.5", 0.5),
    "m23_val_fraction": ("0.3", 0.3),
    "split_by": ("user", "user"),
}


def test_every_option_reaches_its_setting():
    assert sorted(NON_DEFAULT) == sorted(path[-1] for path, _, _ in flat_settings(IngestConfig))
    argv = ["--out=o"] + [f"--{name}={text}" for name, (text, _) in NON_DEFAULT.items()]
    config = cli.config_from_args(cli.parser().parse_args(argv))
    got = {name: getattr(config.splits if hasattr(config.splits, name) else config, name)
           for name in NON_DEFAULT}
    assert got == {name: value for name, (_, value) in NON_DEFAULT.items()}


def test_cli_reports_a_bad_value_or_combination_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--out", str(tmp_path), "--max_image_side=8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and err == ["error: argument --max_image_side: '8': must be >= 32"]
    rc = cli.main(["--out", str(tmp_path / "o"), "--source=demo", "--metadata=x.tsv"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: --source=demo brings its own photos and metadata: drop "
                               "--metadata"]
    assert not (tmp_path / "o").exists()
