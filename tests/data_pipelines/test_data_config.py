"""The data section's declaration (IngestConfig + SplitConfig): cross-field rules at construction."""

from __future__ import annotations

import pytest

from data_pipelines.config import IngestConfig, SplitConfig
from mesh.settings import SettingError


def as_flags(error: SettingError) -> str:
    return error.render(lambda field: f"--data_{field}")


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, "--data_source=metadata needs --data_metadata=FILE[,FILE...]"),
        ({"metadata": ("a.tsv",)}, "and --data_images=DIR"),
        (
            {"source": "demo", "metadata": ("a.tsv",), "autotags": ("t",)},
            "--data_source=demo brings its own photos and metadata: drop --data_metadata and --data_autotags",
        ),
        ({"source": "demo", "image_path_template": "{id}.png"}, "drop --data_image_path_template"),
        ({"source": "demo", "engine": "spark"}, "--data_engine='spark': must be one of local, beam"),
        ({"source": "demo", "max_image_side": 16}, "--data_max_image_side=16: must be >= 32"),
    ],
)
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
