"""`geoloc evaluate`: a trained model on an external test set (paper §4.1.3, Table 5).

    geoloc evaluate --model=RUN_DIR --csv=im2gps3k.csv --images=DIR [--out=DIR]
    geoloc evaluate --model=RUN_DIR/export/m1 --mesh=RUN_DIR/mesh --csv=... --images=...
    geoloc evaluate --benchmark=yfcc4k --model=RUN_DIR --csv=yfcc4k.csv --images=DIR

Predicts every readable image with M1 (and the run's M2 and M3 when the set has posting or capture
times and users) and writes the same report as the run's own (``geoloc_tf.evaluation.external``), by default
to RUN_DIR/eval_external/<csv name>. Settings: ``geoloc_tf.run_configs.ExternalEvaluateConfig``;
the evaluation's settings (`--thresholds_km`, `--near_duplicate_km`, `--bootstrap_samples`, ...)
are the runner's `--evaluate_<name>`, `--top_k` is its `--predict_top_k` and
`--image_path_template` its `--data_image_path_template`. The model, the test set and the scene
classifier are the tool's own.

`--benchmark=NAME` names a standard test set (``geoloc_tf.evaluation.benchmarks``): the CSV must
have its columns, the run is scored under its convention (Earth radius, threshold rule and, for
OSV-5M, the admin rule) unless `--earth_radius_km`, `--threshold_rule` or `--admin_rule` is given,
and the report adds a "benchmark" table with the published results of named systems on that set
beside the run's rows.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from absl import flags

from data_pipelines.config import IngestConfig
from experiments.commands import Command, missing_files_are_user_errors, require
from experiments.commands.predict import define_model_inputs
from experiments.settings_flags import define_setting_flags
from geoloc_tf.evaluation.benchmarks import BENCHMARK_NAMES, CONVENTION_FIELDS, with_convention
from geoloc_tf.run_configs import ExternalEvaluateConfig


def _define_inputs(flag_values: flags.FlagValues) -> None:
    define_model_inputs(flag_values)
    flags.DEFINE_string(
        "csv",
        None,
        "Test set: a CSV (IMG_ID, LAT, LON [, time, user, outdoor, image path]), YFCC100M lines, "
        "OSV-5M's test.csv or MP16-Pro's CSV; read in the format the file says (or the --benchmark's).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "images",
        None,
        "Folder holding the test images (OSV-5M / MP16-Pro: their zips or tar parts, or the extracted photos).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "out", None, "Report folder (default: RUN_DIR/eval_external/<csv name>).", flag_values=flag_values
    )
    flags.DEFINE_enum(
        "benchmark",
        None,
        BENCHMARK_NAMES,
        "A standard test set: its CSV columns are required, its convention (Earth radius, threshold "
        "rule, admin rule) is used unless set, and the report shows published results on it beside "
        "the run's.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "scene_model",
        None,
        "Scene classifier (.keras or SavedModel) whose outdoor "
        "probability selects the outdoor-only rows (Table 4).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "scene_io_labels",
        None,
        "Its indoor/outdoor class file (Places365 IO format: name 1|2).",
        flag_values=flag_values,
    )
    define_setting_flags(
        flag_values,
        {"": IngestConfig},
        module_name="geoloc evaluate: settings",
        only=("image_path_template",),
    )
    require(flag_values, "csv", "images")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, _: list[str]) -> int:
    from geoloc_tf.evaluation.external import evaluate_external

    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s] %(message)s")
    config = configs[""]
    if inputs.benchmark:  # the benchmark's convention, but for what the user set
        given = {name for name in CONVENTION_FIELDS if inputs[name].present}
        config = with_convention(config, inputs.benchmark, keep=given)
    with missing_files_are_user_errors():
        result = evaluate_external(
            inputs.model,
            inputs.csv,
            inputs.images,
            inputs.out,
            inputs.mesh,
            inputs.image_path_template,
            config,
            inputs.scene_model,
            inputs.scene_io_labels,
            inputs.benchmark,
        )
    print(f"{result['photos']} photos evaluated; report: {result.get('report')}")
    if result["unreadable"]:
        print(
            f"{len(result['unreadable'])} unreadable images skipped, e.g. {result['unreadable'][0]}",
            file=sys.stderr,
        )
    return 0


COMMAND = Command(
    name="evaluate",
    summary="Evaluate a trained model on an external test set (Im2GPS-style CSV + images; Table 5).",
    sections={"": ExternalEvaluateConfig},
    only={
        "": (
            "thresholds_km",
            "outdoor_threshold",
            "earth_radius_km",
            "threshold_rule",
            "admin_rule",
            "top_k",
            "batch_size",
            "max_pixels",
            "max_jpeg_scans",
            "max_jpeg_segments",
            "max_other_pixels",
            "scene_image_size",
            "scene_input_range",
            "near_duplicate_km",
            "bootstrap_samples",
            "bootstrap_seed",
        )
    },
    define_inputs=_define_inputs,
    run=_run,
)
