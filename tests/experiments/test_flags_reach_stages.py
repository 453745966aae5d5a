"""Every runner flag, set to a value other than the demo's, reaches the library config that its stage
hands to the library: no flag is parsed and then forgotten, none is mapped by hand onto another name.

Each stage runs for real up to its library call, which is replaced by a recorder; the recorded
config must hold the flag's value under the setting's own name.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments import flags as runner_flags
from experiments.config import SECTIONS, RunConfig
from experiments.errors import ConfigError
from experiments.stages.registry import STAGE_BY_NAME
from mesh.settings import field_kind, flat_settings, flat_values, value_problem

BASE = ("--flagfile=demo.cfg",)

# Flags that need others beside them to form an allowed combination (their rules run at parsing).
COMPANIONS = {
    "data_source": ("--data_metadata=meta.tsv", "--data_images=images"),  # demo -> metadata
    "data_metadata": ("--data_source=metadata", "--data_images=images"),
    "data_images": ("--data_source=metadata", "--data_metadata=meta.tsv"),
    "data_autotags": ("--data_source=metadata", "--data_metadata=meta.tsv", "--data_images=i"),
    "data_image_path_template": (
        "--data_source=metadata",
        "--data_metadata=meta.tsv",
        "--data_images=images",
    ),
    "m3_residual_output": ("--nom3_album_evidence",),
    "m3_init_from_m2": ("--nom3_freeze_m2",),
    "m2_top_k": ("--predict_top_k=20",),
    # The demo stores features for the kNN and cell-retrieval rows; without them both are off.
    "predict_store_features": ("--evaluate_knn_k=0", "--evaluate_cell_retrieval_cells=0"),
    # The kNN row's settings reach write_knn_predictions only when the row is on.
    "evaluate_knn_engine": ("--evaluate_knn_k=5", "--predict_store_features"),
    # Retrieval inside the top cells reads the features; its settings reach the library when it is on.
    # Its cells are at most the stored top cells (the demo's 10; the test value is one more).
    "evaluate_cell_retrieval_cells": ("--predict_store_features", "--predict_top_k=20"),
    "evaluate_cell_retrieval_neighbours": ("--evaluate_cell_retrieval_cells=1", "--predict_store_features"),
    "evaluate_cell_retrieval_temperature": ("--evaluate_cell_retrieval_cells=1", "--predict_store_features"),
}


def other_value(field: dataclasses.Field, kind: type, is_tuple: bool, current: Any) -> Any:
    """A value the setting allows that differs from `current`."""
    meta = field.metadata
    if kind is bool:
        return not current
    if meta.get("choices"):
        options = [c for c in meta["choices"] if c is not None]
        if is_tuple:
            return tuple(options[:1]) if tuple(options[:1]) != current else tuple(options[:2])
        return next(c for c in options if c != current)
    if is_tuple:
        if kind is str:
            return ("x1", "x2")
        if not current:  # an empty default (a feature that is off): its smallest allowed value
            return (kind(meta.get("minimum") or 1),)
        values = tuple(v * 0.5 if kind is float else v + 1 for v in current)
        return values if values != current else tuple(kind(v + 1) for v in current)
    if kind is str:
        return "{id}_x.jpg" if "template" in field.name else f"x_{field.name}"
    base = 0 if current is None else current
    low, high = meta.get("minimum"), meta.get("maximum")
    if kind is int:
        return base + 1 if high is None or base + 1 <= high else base - 1
    candidate = (base + high) / 2 if high is not None else (base * 1.5 if base else 0.5)
    if low is not None and candidate <= low:
        candidate = low + (high - low) / 2 if high is not None else low + 1.0
    if candidate == base:  # at the upper bound already: halfway down to the lower one
        candidate = (base + (low or 0.0)) / 2
    return candidate


def as_flag(name: str, kind: type, is_tuple: bool, value: Any) -> str:
    if kind is bool and not is_tuple:
        return f"--{name}" if value else f"--no{name}"
    text = ",".join(map(str, value)) if is_tuple else str(value)
    return f"--{name}={text}"


def parse(*args: str) -> RunConfig:
    runner_flags.parse(["prog", *BASE, *args])
    return runner_flags.run_config_from_flags()


class Recorded(Exception):
    """Stops a stage at its library call; holds what it was called with."""

    def __init__(self, args, kwargs):
        super().__init__("recorded")
        self.args_, self.kwargs = args, kwargs


def recorder(*args, **kwargs):
    raise Recorded(args, kwargs)


def settings_received(section: str, config: RunConfig, run_dir: Path, monkeypatch) -> dict:
    """{setting: value} of `section` as the stage that reads it handed them to the library."""
    import keras

    import data_pipelines.dataset
    import data_pipelines.ingest
    import geoloc_tf.averaging
    import geoloc_tf.evaluation.report
    import geoloc_tf.m1.export
    import geoloc_tf.m1.predict_records
    import geoloc_tf.m1.training
    import geoloc_tf.m2.task
    import geoloc_tf.m3.task
    import geoloc_tf.retrieval.cell_retrieval
    import geoloc_tf.retrieval.knn
    import mesh
    import mesh.build
    from experiments.stages import mesh_stage

    monkeypatch.setattr(
        mesh.Mesh,
        "load",
        staticmethod(lambda path: types.SimpleNamespace(imagery_centroids=np.zeros((1, 2)))),
    )
    monkeypatch.setattr(keras.saving, "load_model", lambda path, **options: None)
    monkeypatch.setattr(data_pipelines.dataset, "load", lambda path: None)
    monkeypatch.setattr(
        mesh_stage, "training_coordinates", lambda config, run_dir: (np.zeros(1), np.zeros(1), {})
    )
    patches = {
        "mesh": (mesh.build, "build_from_config", lambda r: r.args_[2]),
        "data": (data_pipelines.ingest, "run_ingestion", lambda r: r.args_[0]),
        "m1": (geoloc_tf.m1.training, "train_m1", lambda r: r.args_[4]),
        "runtime": (geoloc_tf.m1.training, "train_m1", lambda r: r.args_[5]),
        "predict": (geoloc_tf.m1.predict_records, "predict_splits", lambda r: r.args_[3]),
        "m2": (geoloc_tf.m2.task, "run", lambda r: r.args_[2]),
        "m3": (geoloc_tf.m3.task, "run", lambda r: r.args_[2]),
        "export": (geoloc_tf.m1.export, "export_m1", lambda r: {"top_k": r.kwargs["top_k"]}),
    }
    if section == "evaluate":
        monkeypatch.setattr(geoloc_tf.averaging, "write_averaging_predictions", lambda *a, **k: {})
        knn = {}
        monkeypatch.setattr(
            geoloc_tf.retrieval.knn,
            "write_knn_predictions",
            lambda layout, split, k, bandwidth_km, engine, **_: knn.update(
                knn_k=k, knn_bandwidth_km=bandwidth_km, knn_engine=engine
            ),
        )
        retrieval = {}
        monkeypatch.setattr(
            geoloc_tf.retrieval.cell_retrieval,
            "write_cell_retrieval_predictions",
            lambda layout, split, settings, **_: retrieval.update(flat_values(settings)),
        )
        monkeypatch.setattr(geoloc_tf.evaluation.report, "evaluate_run", recorder)
        with pytest.raises(Recorded) as got:
            STAGE_BY_NAME["evaluate"].run(config, run_dir)
        evaluation = got.value.kwargs["config"].evaluation
        return {
            "thresholds_km": list(evaluation.thresholds_km),
            "outdoor_threshold": evaluation.outdoor_threshold,
            "earth_radius_km": evaluation.earth_radius_km,
            "threshold_rule": evaluation.threshold_rule,
            "admin_rule": evaluation.admin_rule,
            "bootstrap_samples": evaluation.bootstrap_samples,
            "bootstrap_seed": evaluation.bootstrap_seed,
            "near_duplicate_km": evaluation.near_duplicate_km,
            "knn_k": knn.get("knn_k", 0),
            "knn_bandwidth_km": knn.get("knn_bandwidth_km", config.evaluate.knn_bandwidth_km),
            "knn_engine": knn.get("knn_engine"),
            **{
                name: retrieval.get(name, 0 if name == "cell_retrieval_cells" else value)
                for name, value in flat_values(config.evaluate.cell_retrieval).items()
            },
        }
    module, name, extract = patches[section]
    monkeypatch.setattr(module, name, recorder)
    with pytest.raises(Recorded) as got:
        STAGE_BY_NAME["m1" if section == "runtime" else section].run(config, run_dir)
    value = extract(got.value)
    return value if isinstance(value, dict) else flat_values(value)


FLAGS = [
    (section, field, owner) for section, cls in SECTIONS.items() for _, field, owner in flat_settings(cls)
]


@pytest.mark.parametrize("section, field, owner", FLAGS, ids=[f"{s}_{f.name}" for s, f, _ in FLAGS])
def test_flag_reaches_the_config_its_stage_receives(section, field, owner, tmp_path, monkeypatch):
    name = f"{section}_{field.name}"
    kind, is_tuple = field_kind(owner, field)
    baseline = flat_values(parse().section(section))[field.name]
    baseline = tuple(baseline) if isinstance(baseline, list) else baseline
    value = other_value(field, kind, is_tuple, baseline)
    assert value != baseline and value_problem(field, value) is None, (name, value)
    try:
        config = parse(*COMPANIONS.get(name, ()), as_flag(name, kind, is_tuple, value))
    except ConfigError as error:  # a rule this table does not know about: say which
        pytest.fail(f"{name}={value!r} needs companions in COMPANIONS: {error}")
    received = settings_received(section, config, tmp_path, monkeypatch)
    expected = list(value) if is_tuple else value
    assert received[field.name] == expected
