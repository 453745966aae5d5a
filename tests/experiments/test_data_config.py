"""The runner's data flags reach the library IngestConfig that the mesh and data stages receive."""

from __future__ import annotations

import pytest

from data_pipelines.config import IngestConfig, SplitConfig
from experiments.config import DataSection, RunConfig
from experiments.errors import ConfigError
from experiments.stages.sources import data_config


def test_every_data_flag_reaches_the_ingestion_config():
    section = DataSection(source="metadata", metadata=("a.tsv", "b.csv"), images="photos",
                          autotags=("tags",), image_path_template="{hash}.jpg", demo_size="small",
                          seed=4, m1_val_fraction=0.3, m23_val_fraction=0.5, split_by="user",
                          max_image_side=200)
    assert data_config(RunConfig(data=section)) == IngestConfig(
        source="metadata", metadata=("a.tsv", "b.csv"), images="photos", autotags=("tags",),
        image_path_template="{hash}.jpg", demo_size="small", max_image_side=200,
        splits=SplitConfig(seed=4, m1_val_fraction=0.3, m23_val_fraction=0.5, split_by="user"))


def test_a_bad_combination_of_data_flags_names_the_flags():
    with pytest.raises(ConfigError, match="^--data_source=demo brings its own photos and metadata: "
                                          "drop --data_images$"):
        data_config(RunConfig(data=DataSection(source="demo", images="photos")))
