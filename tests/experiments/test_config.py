"""RunConfig <-> config.json round trip, and what the settings declarations decide."""

import json

import pytest

from experiments.config import FORMAT_VERSION, SECTIONS, RunConfig
from experiments.run import read_config, write_config
from mesh.settings import flat_settings, value_problem


def test_json_round_trip_preserves_every_value_and_type(run_config):
    m2 = SECTIONS["m2"](hidden_units=12, learning_rates=(0.1, 0.2), extra_inputs=("outdoor",))
    config = run_config(m2=m2)
    again = RunConfig.from_json(config.to_json())
    assert again == config
    assert isinstance(again.m2.learning_rates, tuple)


def test_config_json_written_and_read_back(tmp_path):
    from experiments import flags as geoloc_flags

    argv = [
        "prog",
        "--flagfile=fine.cfg",
        f"--run_dir={tmp_path}",
        "--m2_dropout=0.3",
        "--data_metadata=meta.tsv",
        "--data_images=images",
    ]
    geoloc_flags.parse(argv)
    config = geoloc_flags.run_config_from_flags()
    path = write_config(tmp_path, config, argv)
    payload = json.loads(path.read_text())
    assert payload["format_version"] == FORMAT_VERSION
    assert payload["sections"]["mesh"]["refinement_limit"] == 5000
    assert payload["sections"]["m2"]["dropout"] == 0.3
    assert payload["invocation"]["argv"] == argv[1:]
    assert read_config(tmp_path) == config
    assert not list(tmp_path.glob(".config.json*"))  # no temporary file left behind


def test_newer_config_format_is_refused():
    text = json.dumps({"format_version": FORMAT_VERSION + 1, "sections": {}})
    with pytest.raises(ValueError, match="format_version"):
        RunConfig.from_json(text)


def test_unknown_field_is_refused(run_config):
    sections = run_config().to_dict()
    sections["m2"]["hiden_units"] = 3
    with pytest.raises(ValueError, match="hiden_units"):
        RunConfig.from_dict(sections)


def test_every_setting_has_help_and_a_default_its_own_rules_accept():
    """A default that breaks its own bounds would make every run fail at parsing."""
    for cls in SECTIONS.values():
        for _, field, owner in flat_settings(cls):
            assert field.metadata["help"].strip(), f"{owner.__name__}.{field.name} has no help"
            default = field.default_factory() if callable(field.default_factory) else field.default
            assert value_problem(field, default) is None, f"{owner.__name__}.{field.name}"


def test_backbone_choices_are_the_ones_geoloc_tf_builds():
    from geoloc_tf.m1.backbones import APPLICATIONS_BACKBONES

    (field,) = [f for _, f, _ in flat_settings(SECTIONS["m1"]) if f.name == "backbone"]
    assert sorted(field.metadata["choices"]) == sorted(("inception_v4",) + APPLICATIONS_BACKBONES)
