"""RunConfig <-> config.json round trip and the field validators."""

import dataclasses
import json

import pytest

from experiments.config import (FORMAT_VERSION, SECTIONS, M2Section, RunConfig, validate_value)
from experiments.run import read_config, write_config


def test_json_round_trip_preserves_every_value_and_type():
    config = RunConfig(m2=M2Section(hidden_units=12, learning_rates=(0.1, 0.2), extra_inputs=("outdoor",)))
    again = RunConfig.from_json(config.to_json())
    assert again == config
    assert isinstance(again.m2.learning_rates, tuple)


def test_config_json_written_and_read_back(tmp_path):
    from experiments import flags as geoloc_flags
    geoloc_flags.parse(["prog", "--flagfile=fine.cfg", f"--run_dir={tmp_path}", "--m2_dropout=0.3"])
    config = geoloc_flags.run_config_from_flags()
    path = write_config(tmp_path, config, ["prog", "--flagfile=fine.cfg", "--m2_dropout=0.3"])
    payload = json.loads(path.read_text())
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["sections"]["mesh"]["refinement_limit"] == 5000
    assert payload["invocation"]["argv"] == ["--flagfile=fine.cfg", "--m2_dropout=0.3"]
    assert read_config(tmp_path) == config
    assert not list(tmp_path.glob(".config.json*"))  # no temporary file left behind


def test_newer_config_format_is_refused():
    text = json.dumps({"format_version": FORMAT_VERSION + 1, "sections": {}})
    with pytest.raises(ValueError, match="format_version"):
        RunConfig.from_json(text)


def test_unknown_field_is_refused():
    sections = RunConfig().to_dict()
    sections["m2"]["hiden_units"] = 3
    with pytest.raises(ValueError, match="hiden_units"):
        RunConfig.from_dict(sections)


def test_every_field_has_help_and_its_default_is_valid():
    for cls in SECTIONS.values():
        instance = cls()
        for field in dataclasses.fields(cls):
            assert field.metadata["help"].strip(), f"{cls.__name__}.{field.name} has no help"
            assert validate_value(field, getattr(instance, field.name)) is None, field.name


def test_backbone_choices_are_the_ones_geoloc_tf_builds():
    from experiments.config import M1Section
    from geoloc_tf.m1.backbones import BACKBONES

    field = next(f for f in dataclasses.fields(M1Section) if f.name == "backbone")
    assert set(field.metadata["choices"]) == set(BACKBONES)


def test_early_stopping_metric_choices_match_the_models():
    """The runner lists the choices itself (reading flags must not import TensorFlow); they must
    stay those the M2/M3 configurations accept."""
    from experiments.config import EARLY_STOPPING_METRICS
    from geoloc_tf.m2.config import EARLY_STOPPING_METRICS as MODEL_METRICS

    assert EARLY_STOPPING_METRICS == MODEL_METRICS
