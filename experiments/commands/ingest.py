"""`geoloc ingest`: a geotagged photo collection (YFCC100M, Multimedia Commons or CSV), or the demo
collection, into sharded TFRecords and per-split tables. Resumable: rerun the same command.

    geoloc ingest --metadata=yfcc100m_dataset --images=DIR --out=DATA
    geoloc ingest --source=demo --demo_size=small --out=DATA
    geoloc ingest ... --engine=beam --beam_pipeline_options="--runner=FlinkRunner ..."

Its options are the data section's settings (`data_pipelines.config.IngestConfig`) under the runner's
names without the `data_` prefix; `--out` is the tool's own.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from absl import flags

from data_pipelines.config import IngestConfig
from experiments.commands import Command, require


def _define_inputs(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_string("out", None, "Output folder of the data set.", flag_values=flag_values)
    require(flag_values, "out")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, _: list[str]) -> int:
    from data_pipelines.ingest import run_ingestion

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    summary = run_ingestion(configs[""], inputs.out)
    keys = ("lines_read", "examples_written", "skipped", "splits")
    print(json.dumps({k: summary[k] for k in keys}, sort_keys=True))
    return 0


COMMAND = Command(
    name="ingest",
    summary="Ingest a geotagged photo collection, or the demo collection, into sharded TFRecords "
    "and per-split tables (resumable: rerun the same command).",
    sections={"": IngestConfig},
    define_inputs=_define_inputs,
    run=_run,
)
