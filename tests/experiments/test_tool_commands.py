"""`geoloc predict`, `serve`, `index`, `search`, `evaluate` and `compare`: every setting option
reaches the config that the tool hands to the library, and a bad value is one line naming the flag.

The library entry points are replaced by recorders, so no model is loaded: what is checked is what
the command decides (flags -> config), the library's own behaviour is tested in tests/geoloc_tf.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_pipelines.config import DecodeBudget
from experiments.cli import main as geoloc
from experiments.commands import command_flags
from experiments.commands import evaluate as evaluate_command
from experiments.commands import index as index_command
from experiments.commands import predict as predict_command
from experiments.commands import search as search_command
from experiments.commands import serve as serve_command
from experiments.settings_flags import flag_name
from geoloc_tf.inference.config import PredictFilesConfig, ServerConfig
from geoloc_tf.retrieval.config import IndexConfig, SearchConfig
from geoloc_tf.retrieval.feature_index import FeatureIndex
from geoloc_tf.run_configs import EvaluateConfig, ExternalEvaluateConfig, PredictConfig
from mesh.settings import flat_settings, from_flat

DECODE = {"max_jpeg_scans": ("9", 9), "max_jpeg_segments": ("99", 99), "max_other_pixels": ("999", 999)}
# A value other than the default for every setting of each tool, as typed, and the value it must
# then hold in the config handed to the library.
PREDICT = {
    "top_k": ("3", 3),
    "format": ("json", "json"),
    "batch_size": ("7", 7),
    "max_pixels": ("1000", 1000),
    "progress": ("off", "off"),
    "engine": ("exact", "exact"),
    "cell_retrieval_cells": ("2", 2),
    "cell_retrieval_neighbours": ("7", 7),
    "cell_retrieval_temperature": ("0.5", 0.5),
    **DECODE,
}
SERVE = {
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9090", 9090),
    "max_body_bytes": ("1000", 1000),
    "max_batch": ("4", 4),
    "batch_wait_ms": ("12.5", 12.5),
    "top_k": ("2", 2),
    "request_timeout_s": ("30", 30.0),
    "max_pixels": ("2000", 2000),
    "header_timeout_s": ("3", 3.0),
    "body_timeout_s": ("4", 4.0),
    "keep_alive_s": ("2", 2),
    "max_connections": ("9", 9),
    "max_parts": ("3", 3),
    "max_connections_per_client": ("5", 5),
    "decode_workers": ("3", 3),
    "decode_slow_workers": ("2", 2),
    "decode_fast_pixels": ("1000", 1000),
    "decode_cpu_s": ("1.5", 1.5),
    "decode_memory_mb": ("200", 200),
    "shutdown_timeout_s": ("7", 7),
    "m2": ("false", False),
    "engine": ("exact", "exact"),
    "cell_retrieval_cells": ("3", 3),
    "cell_retrieval_neighbours": ("9", 9),
    "cell_retrieval_temperature": ("0.25", 0.25),
    **DECODE,
}
ANN = {
    "engine": ("faiss", "faiss"),
    "ann_lists": ("64", 64),
    "ann_code_bytes": ("48", 48),
    "ann_code_bits": ("4", 4),
    "ann_train_photos": ("5000", 5000),
    "ann_probes": ("4", 4),
    "ann_rerank_factor": ("3", 3),
    "ann_min_scan": ("200", 200),
}
INDEX = {"split": ("m23_val", "m23_val"), "batch_size": ("16", 16), **ANN}
INDEX_RUNTIME = {"runtime_strategy": ("one_device", "one_device")}  # RuntimeConfig's, as the runner's
SEARCH = {"k": ("3", 3), "format": ("json", "json"), "max_pixels": ("3000", 3000), **DECODE, **ANN}
EVALUATE = {
    "thresholds_km": ("5,50,500", (5.0, 50.0, 500.0)),
    "outdoor_threshold": ("0.8", 0.8),
    "earth_radius_km": ("6371", 6371.0),
    "threshold_rule": ("lt", "lt"),
    "admin_rule": ("osv5m", "osv5m"),
    "top_k": ("4", 4),
    "batch_size": ("5", 5),
    "max_pixels": ("4000", 4000),
    **DECODE,
    "scene_image_size": ("64", 64),
    "scene_input_range": ("-1,1", (-1.0, 1.0)),
    "near_duplicate_km": ("2.5", 2.5),
    "bootstrap_samples": ("200", 200),
    "bootstrap_seed": ("7", 7),
}


def options(values: dict) -> list[str]:
    return [f"--{name}={text}" for name, (text, _) in values.items()]


def expected(values: dict) -> dict:
    return {name: value for name, (_, value) in values.items()}


@pytest.mark.parametrize(
    "command,values",
    [
        (predict_command.COMMAND, PREDICT),
        (serve_command.COMMAND, SERVE),
        (index_command.COMMAND, {**INDEX, **INDEX_RUNTIME}),
        (search_command.COMMAND, SEARCH),
        (evaluate_command.COMMAND, EVALUATE),
    ],
)
def test_the_tables_cover_every_setting_option_of_the_tool(command, values):
    settings = [
        flag_name(prefix, path[-1])
        for prefix, cls in command.sections.items()
        for path, _, _ in flat_settings(cls)
        if prefix not in command.only or path[-1] in command.only[prefix]
    ]
    assert sorted(values) == sorted(settings)
    assert set(values) <= set(command_flags(command))


class FakePredictor:
    has_m2 = False
    m2_uses_outdoor = False
    m1 = types.SimpleNamespace(mesh=None)  # CellRetriever.open is replaced: no mesh needed
    retriever = None

    def with_retrieval(self, retriever, engine):
        answering = FakePredictor()
        answering.retriever = (retriever, engine)
        return answering


def record_retriever(monkeypatch, seen: dict) -> None:
    """CellRetriever.open replaced by a recorder of the index, settings and engine it gets."""
    monkeypatch.setattr(
        "geoloc_tf.retrieval.cell_retrieval.CellRetriever.open",
        lambda path, mesh, config, engine: ("retriever", path, config, engine),
    )


def test_every_predict_option_reaches_the_config_predict_files_gets(tmp_path, monkeypatch, capsys):
    seen = {}
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"not read: predict_files is replaced")
    monkeypatch.setattr(
        "geoloc_tf.inference.photo_predictor.Predictor.load", lambda *args, **kwargs: FakePredictor()
    )

    def record(predictor, files, out, config, *rest):
        seen.update(files=files, config=config, retriever=predictor.retriever)
        return len(files), 0

    monkeypatch.setattr("geoloc_tf.inference.predict_files.predict_files", record)
    record_retriever(monkeypatch, seen)
    index = tmp_path / "features"
    FeatureIndex.write(index, np.zeros((2, 4)), ["a", "b"], [0.0, 1.0], [0.0, 1.0])
    args = ["predict", str(photo), f"--model={tmp_path}", f"--index={index}", *options(PREDICT)]
    assert geoloc(args) == 0
    config = from_flat(PredictFilesConfig, expected(PREDICT))
    retriever = seen.pop("retriever")
    assert seen == {"files": [photo], "config": config}
    assert retriever == (("retriever", index, config.cell_retrieval, "exact"), "exact")
    assert geoloc(["predict", str(photo), f"--model={tmp_path}"]) == 0
    assert seen["config"] == PredictFilesConfig() and seen["retriever"] is None


def test_every_serve_option_reaches_the_config_the_server_gets(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "geoloc_tf.inference.photo_predictor.Predictor.load",
        lambda model, mesh, with_m2: seen.update(with_m2=with_m2) or FakePredictor(),
    )
    monkeypatch.setattr(
        "geoloc_tf.inference.server.serve",
        lambda predictor, config, nearest: seen.update(
            config=config, nearest=nearest, retriever=predictor.retriever
        ),
    )
    record_retriever(monkeypatch, seen)
    index = tmp_path / "features"
    FeatureIndex.write(index, np.zeros((2, 4)), ["a", "b"], [0.0, 1.0], [0.0, 1.0])
    assert geoloc(["serve", f"--model={tmp_path}", f"--index={index}", *options(SERVE)]) == 0
    nearest, retriever = seen.pop("nearest"), seen.pop("retriever")
    config = from_flat(ServerConfig, expected(SERVE))
    assert seen == {"with_m2": False, "config": config}
    assert (nearest.index.root, len(nearest.index), nearest.engine) == (index, 2, "exact")
    assert retriever == (("retriever", index, config.cell_retrieval, "exact"), "exact")
    assert geoloc(["serve", f"--model={tmp_path}"]) == 0
    assert seen["config"].host == "127.0.0.1" and seen["with_m2"] is True  # loopback by default
    assert seen["nearest"] is None  # the run has no index/m1_train


def test_every_index_option_reaches_the_config_build_index_gets(tmp_path, monkeypatch, capsys):
    seen = {}

    class Built:
        dim, root = 8, tmp_path

        def __len__(self):
            return 3

    def record(run_dir, config, out_dir, strategy):
        seen.update(run_dir=run_dir, config=config, out_dir=out_dir, strategy=strategy)
        return Built()

    monkeypatch.setattr("geoloc_tf.retrieval.feature_index.build_index", record)
    monkeypatch.setattr("geoloc_tf.distribute.make_strategy", lambda name: f"strategy {name}")
    given = options(INDEX) + options(INDEX_RUNTIME)
    assert geoloc(["index", f"--model={tmp_path}", f"--out={tmp_path / 'i'}", *given]) == 0
    assert seen == {
        "run_dir": str(tmp_path),
        "config": from_flat(IndexConfig, expected(INDEX)),
        "out_dir": str(tmp_path / "i"),
        "strategy": "strategy one_device",
    }
    assert "3 photos x 8 features" in capsys.readouterr().out


def test_every_search_option_reaches_the_search(tmp_path, monkeypatch, capsys):
    seen = {}

    class Index:
        meta = {}

        def __len__(self):
            return 10

    def record(index, model, image, config, lat, lon):
        seen.update(k=config.k, config=config, lat=lat, lon=lon)
        return pd.DataFrame(
            {
                "rank": [1],
                "row": [0],
                "photo_id": ["p"],
                "distance": [0.5],
                "lat": [1.0],
                "lon": [2.0],
                "km_from_query": [float("nan")],
            }
        )

    monkeypatch.setattr("geoloc_tf.retrieval.feature_index.FeatureIndex.open", lambda path: Index())
    monkeypatch.setattr("geoloc_tf.inference.m1_model.read_photo", lambda path, budget, side: "pixels")
    monkeypatch.setattr(
        "geoloc_tf.inference.m1_model.M1Model.load", lambda path: types.SimpleNamespace(image_size=299)
    )
    monkeypatch.setattr("geoloc_tf.retrieval.query.search_image", record)
    assert geoloc(["search", "q.jpg", f"--index={tmp_path}", f"--model={tmp_path}", *options(SEARCH)]) == 0
    assert seen["config"] == from_flat(SearchConfig, expected(SEARCH))
    assert seen["k"] == 3 and seen["config"].ann.ann_probes == 4
    assert json.loads(capsys.readouterr().out)["neighbours"][0]["photo_id"] == "p"  # --format
    assert geoloc(["search", "q.jpg", f"--index={tmp_path}", f"--model={tmp_path}"]) == 0
    assert seen["k"] == 6 and capsys.readouterr().out.split()[:2] == ["rank", "photo_id"]


def test_every_evaluate_option_reaches_the_config_evaluate_external_gets(tmp_path, monkeypatch, capsys):
    seen = {}

    def record(*args):
        seen["args"] = args
        return {"photos": 2, "unreadable": [], "report": "r.md"}

    monkeypatch.setattr("geoloc_tf.evaluation.external.evaluate_external", record)
    assert (
        geoloc(
            [
                "evaluate",
                "--model=run",
                "--csv=t.csv",
                "--images=img",
                "--image_path_template={id}",
                *options(EVALUATE),
            ]
        )
        == 0
    )
    values = expected(EVALUATE)
    want = ExternalEvaluateConfig(
        evaluate=EvaluateConfig(
            thresholds_km=values["thresholds_km"],
            outdoor_threshold=values["outdoor_threshold"],
            earth_radius_km=values["earth_radius_km"],
            threshold_rule=values["threshold_rule"],
            admin_rule=values["admin_rule"],
            near_duplicate_km=values["near_duplicate_km"],
            bootstrap_samples=values["bootstrap_samples"],
            bootstrap_seed=values["bootstrap_seed"],
        ),
        predict=PredictConfig(top_k=values["top_k"]),
        batch_size=values["batch_size"],
        max_pixels=values["max_pixels"],
        decode=from_flat(DecodeBudget, expected(DECODE)),
        scene_image_size=values["scene_image_size"],
        scene_input_range=values["scene_input_range"],
    )
    assert seen["args"] == ("run", "t.csv", "img", None, None, "{id}", want, None, None, None)
    assert "2 photos evaluated" in capsys.readouterr().out


def test_compare_labels_reach_compare_runs(monkeypatch, capsys):
    seen = {}

    class Table:
        def to_markdown(self):
            return "| table |"

    def record(runs, out, labels):
        seen.update(runs=runs, out=out, labels=labels)
        return [Table()], {}

    monkeypatch.setattr("geoloc_tf.evaluation.compare.compare_runs", record)
    assert geoloc(["compare", "r1", "r2", "--labels=one,two", "--out=o"]) == 0
    assert seen == {"runs": ["r1", "r2"], "out": "o", "labels": ["one", "two"]}


@pytest.mark.parametrize(
    "args,message",
    [
        (["predict", "a.jpg", "--model=m", "--top_k=0"], "error: flag --top_k=0: must be >= 1"),
        (
            ["predict", "a.jpg", "--model=m", "--format=xml"],
            "error: flag --format=xml: must be one of table, json, csv, geojson",
        ),
        (["serve", "--model=m", "--port=70000"], "error: flag --port=70000: must be <= 65535"),
        (["serve", "--model=m", "--batch_wait_ms=-1"], "error: flag --batch_wait_ms=-1.0: must be >= 0.0"),
        (
            ["index", "--model=m", "--split=test"],
            "error: flag --split=test: must be one of m1_train, m23_train, m23_val",
        ),
        (["search", "q.jpg", "--index=i", "--k=0"], "error: flag --k=0: must be >= 1"),
        (
            ["search", "q.jpg", "--index=i", "--lat=91"],
            "error: flag --lat=91: 91.0 is not a number in the range [-90.0, 90.0]",
        ),
        (
            ["search", "q.jpg", "--index=i", "--lat=1"],
            "error: --lat and --lon go together: give both or neither",
        ),
        (
            ["evaluate", "--model=m", "--csv=c", "--images=i", "--thresholds_km=750,25"],
            "error: flag --thresholds_km=['750', '25']: values must be strictly increasing",
        ),
        (
            ["evaluate", "--model=m", "--csv=c", "--images=i", "--scene_input_range=1,0"],
            "error: flag --scene_input_range=['1', '0']: expected two values, low,high with low < high",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_flag(args, message, capsys):
    assert geoloc(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]


@pytest.mark.parametrize(
    "args,words",
    [
        (["predict", "--model=m"], "PHOTO_OR_DIR"),
        (["search", "--index=i"], "IMAGE"),
        (["serve"], "--model"),
        (["evaluate", "--model=m"], "--csv"),
    ],
)
def test_a_missing_input_is_one_line(args, words, capsys):
    assert geoloc(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err


def test_a_missing_run_is_one_line(tmp_path, capsys):
    assert geoloc(["compare", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nothing" in err and "\n" not in err


def test_same_setting_same_name_in_runner_and_evaluate():
    """The runner's --evaluate_thresholds_km is the tool's --thresholds_km, same help and default."""
    from experiments import flags as runner_flags

    tool = command_flags(evaluate_command.COMMAND)
    for runner, name in (
        ("evaluate_thresholds_km", "thresholds_km"),
        ("evaluate_outdoor_threshold", "outdoor_threshold"),
        ("evaluate_earth_radius_km", "earth_radius_km"),
        ("evaluate_threshold_rule", "threshold_rule"),
        ("evaluate_admin_rule", "admin_rule"),
        ("evaluate_near_duplicate_km", "near_duplicate_km"),
        ("evaluate_bootstrap_samples", "bootstrap_samples"),
        ("evaluate_bootstrap_seed", "bootstrap_seed"),
        ("predict_top_k", "top_k"),
        ("data_image_path_template", "image_path_template"),
    ):
        assert (tool[name].help, tool[name].default) == (
            runner_flags.FLAGS[runner].help,
            runner_flags.FLAGS[runner].default,
        )


def test_the_tools_parse_options_without_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, experiments.commands.serve, experiments.commands.predict, "
        "experiments.commands.evaluate, experiments.commands.search, "
        "experiments.commands.index; print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert out.stdout.strip() == "False", out.stderr
