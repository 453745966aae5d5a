"""`geoloc index`: store M1's penultimate features of a run's photos for query by example.

    geoloc index --model=RUN_DIR [--split=m1_train] [--out=RUN_DIR/index/m1_train]
        [--runtime_strategy=auto|mirrored|multi_worker|one_device]
        [--engine=auto|exact|faiss] [--keep_features]

Runs the run's M1 over one split of its TFRecords (paper appendix B: retrieval by M1's 1536-d
features) and writes a ``FeatureIndex`` directory (``geoloc_tf.retrieval.feature_index``). A killed
build, rerun with the same command, redoes only the record shards it had not finished. With
``--engine=faiss`` (or ``auto`` above its size) it also builds the compressed FAISS index in the
folder (``geoloc_tf.retrieval.ann``); ``--keep_features`` builds only that, from the features an
index folder already holds (the predict stage's), without running M1. Settings:
``geoloc_tf.retrieval.config.IndexConfig``; the run and the output folder are the tool's own.
M1 runs under ``--runtime_strategy`` (``RuntimeConfig.strategy``, the runner's option), on the Keras
backend of the process (``KERAS_BACKEND``: tf.distribute on TensorFlow, keras.distribution on JAX).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from absl import flags

from experiments.commands import Command, missing_files_are_user_errors, require
from geoloc_tf.retrieval.config import IndexConfig
from geoloc_tf.runtime_config import RuntimeConfig


def _define_inputs(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_string(
        "model", None, "Run directory (its m1 stage finished, and its data/).", flag_values=flag_values
    )
    flags.DEFINE_string(
        "out", None, "Index directory (default: RUN_DIR/index/SPLIT).", flag_values=flag_values
    )
    flags.DEFINE_boolean(
        "keep_features",
        False,
        "Keep the features of an existing index folder (e.g. the predict stage's) and only build "
        "the engine's index from them.",
        flag_values=flag_values,
    )
    require(flag_values, "model")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, _: list[str]) -> int:
    from geoloc_tf.m1.predict_records import placement
    from geoloc_tf.retrieval.feature_index import FeatureIndex, build_index, prepare_engine
    from geoloc_tf.run_layout import RunLayout

    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s] %(message)s")
    config: IndexConfig = configs[""]
    started = time.monotonic()
    with missing_files_are_user_errors():
        if inputs.keep_features:
            out = inputs.out or RunLayout(inputs.model).index_dir(config.split)
            index = prepare_engine(FeatureIndex.open(out), config)
        else:
            strategy = placement(configs["runtime"].strategy)
            index = build_index(inputs.model, config, inputs.out, strategy=strategy)
    seconds = time.monotonic() - started
    print(
        f"{len(index)} photos x {index.dim} features indexed in {seconds:.0f} s "
        f"({len(index) / max(seconds, 1e-9):.0f} photos/s): {index.root}"
    )
    return 0


COMMAND = Command(
    name="index",
    summary="Store M1's features of a run's photos for query by example (geoloc search).",
    sections={"": IndexConfig, "runtime": RuntimeConfig},
    only={"runtime": ("strategy",)},
    define_inputs=_define_inputs,
    run=_run,
)
