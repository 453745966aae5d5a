"""Ingestion as an Apache Beam pipeline (``geoloc ingest --engine=beam``): the local engine's steps
as Beam transforms, so a runner (DirectRunner here, Dataflow, Flink or Spark on a cluster) spreads
the photos over many machines.

    Create(parse tasks)                    one per metadata file (run.metadata_tasks, on the launching
                                           machine: metadata.json, the salt, the settings checked)
      | Reshuffle | Map(parse.parse_metadata_file)          one metadata file per element
      | ToList | FlatMap(plan)             run.metadata_phase + shards.shard_tasks, one worker,
                                           metadata only: the unfinished shards as tasks
      | Reshuffle | Map(shards.write_shard)                 one shard per element (the per-photo
                                           work: read, decode, check, re-encode, serialize, status)
      | Count | Map(finish)                run.metadata_phase + shards.ordered_statuses + run.finish,
                                           one worker: tables, manifest, tfds metadata, summary.json

Every step is the function the local engine (``run.run_ingestion``) calls, so both engines read
the same formats, skip the same records and write byte-identical shards, tables and manifests.
The steps hand each other only small values (counts, one shard's rows); what they share lives in
the output folder as it does locally (``layout``: ``_work/parsed``, ``_work/shards``), which is
what keeps the pipeline resumable: a rerun skips the parsed files and the finished shards (a shard
is finished when its records file and its status exist), and a step that a runner retries
rewrites the same bytes under a fresh temporary name and renames them into place. The last step
computes the plan again from the parsed files rather than receiving the plan's table as one
element (at 48 M photos it is gigabytes; planning is metadata only and deterministic).

The output folder, the images and the metadata files are read and written as local POSIX paths:
on a cluster every worker (and the machine that launches the pipeline, which reads summary.json
back) must see them at the same path, on a shared file system (NFS, Filestore, a FUSE mount of
the bucket). Beam's own IO is not used because the shard writer (``tf.io.TFRecordWriter``),
the archive readers and Parquet tables already take paths.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import time

from data_pipelines import errors
from data_pipelines.child_processes import die_with_process
from data_pipelines.config import IngestConfig
from data_pipelines.ingest import layout
from data_pipelines.ingest.parse import parse_metadata_file
from data_pipelines.ingest.run import Timing, finish, metadata_phase, metadata_tasks
from data_pipelines.ingest.shards import ordered_statuses, shard_tasks, write_shard

try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, WorkerOptions
except ImportError:  # pragma: no cover - depends on the installation
    raise errors.ConfigError(
        'engine=beam needs Apache Beam, which is not installed; expected the beam extra: pip install -e ".[beam]"'
    ) from None

log = logging.getLogger("data_pipelines.ingest")


class _OnLauncher(beam.DoFn):
    """``fn`` of each element, in a worker that dies with the process that launched the pipeline
    (``launcher``; None on a cluster, whose workers are the cluster's to end). DirectRunner's
    multi_processing mode (the default options) starts SDK worker processes, through a shell, that
    would otherwise outlive a launcher killed with kill -9 by about ten seconds, until their gRPC
    channel to it fails; in_memory mode runs everything in the launcher and starts none."""

    def __init__(self, fn, launcher: int | None):
        self.fn = fn
        self.launcher = launcher

    def setup(self):
        if self.launcher is not None:
            die_with_process(self.launcher)

    def process(self, element):
        yield self.fn(element)


def _parse(task: tuple) -> tuple[int, dict]:
    """One metadata file parsed (``parse_metadata_file``), with its position among the files."""
    return task[0], parse_metadata_file(*task)


def _infos(parsed: list[tuple[int, dict]]) -> list[dict]:
    return [info for _, info in sorted(parsed, key=lambda pair: pair[0])]


def _plan(parsed: list[tuple[int, dict]], config: IngestConfig, out_dir: str):
    """The unfinished shards as tasks (the main output) and when planning ended (``planned_at``)."""
    phase = metadata_phase(config, out_dir, _infos(parsed))
    tasks, finished = shard_tasks(
        phase.config, phase.table, phase.plan, out_dir, phase.sources, phase.archives
    )
    yield beam.pvalue.TaggedOutput("planned_at", time.time())
    yield from tasks


def _finish(
    _written: int,
    config: IngestConfig,
    out_dir: str,
    parsed: list[tuple[int, dict]],
    planned_at: float,
    started_at: float,
    workers: int,
) -> None:
    """Tables, manifest, tfds metadata and summary.json, once every shard is written."""
    phase = metadata_phase(config, out_dir, _infos(parsed))
    _, statuses = shard_tasks(phase.config, phase.table, phase.plan, out_dir, phase.sources, phase.archives)
    now = time.time()
    timing = Timing(now - started_at, planned_at - started_at, now - planned_at, workers)
    finish(phase, ordered_statuses(phase.config, phase.plan, statuses, out_dir), out_dir, timing)


def _workers(options: PipelineOptions) -> int:
    """The processes that write shards, as far as the options say (for the summary's steady rate):
    DirectRunner's ``direct_num_workers`` (0: one per core), else the cluster's worker count."""
    if "DirectRunner" in str(options.get_all_options().get("runner") or "DirectRunner"):
        return options.view_as(DirectOptions).direct_num_workers or os.cpu_count() or 1
    worker = options.view_as(WorkerOptions)
    return worker.max_num_workers or worker.num_workers or 1


def _launcher(options: PipelineOptions) -> int | None:
    """This process's id when the runner is DirectRunner (its workers run on this machine and
    should end with it), else None."""
    local = "DirectRunner" in str(options.get_all_options().get("runner") or "DirectRunner")
    return os.getpid() if local else None


def build(
    pipeline,
    config: IngestConfig,
    out_dir: str,
    parse_tasks: list[tuple],
    started_at: float,
    workers: int,
    launcher: int | None = None,
) -> None:
    """Adds the ingestion's transforms to ``pipeline`` (``config`` and ``parse_tasks`` from
    ``run.metadata_tasks``); the per-file and per-shard work runs in workers that die with the
    process ``launcher`` (``_OnLauncher``; None: no such watch)."""
    parsed = (
        pipeline
        | "MetadataFiles" >> beam.Create(parse_tasks)
        | "SpreadFiles" >> beam.Reshuffle()
        | "Parse" >> beam.ParDo(_OnLauncher(_parse, launcher))
        | "AllFiles" >> beam.combiners.ToList()
    )
    planned = parsed | "Plan" >> beam.FlatMap(_plan, config, out_dir).with_outputs("planned_at", main="tasks")
    written = (
        planned.tasks
        | "SpreadShards" >> beam.Reshuffle()
        | "WriteShard" >> beam.ParDo(_OnLauncher(write_shard, launcher))
        | "CountShards" >> beam.combiners.Count.Globally()
    )
    _ = written | "Finish" >> beam.Map(
        _finish,
        config,
        out_dir,
        parsed=beam.pvalue.AsSingleton(parsed),
        planned_at=beam.pvalue.AsSingleton(planned.planned_at),
        started_at=started_at,
        workers=workers,
    )


def _worker_error(error: Exception) -> Exception:
    """A worker's ``data_pipelines.errors`` error, which a runner hands back as the text of a
    traceback, as that error again (one line for the command line); other failures as they are."""
    found = re.findall(r"^data_pipelines\.errors\.(\w+): (.+)$", str(error), flags=re.MULTILINE)
    if found and isinstance(getattr(errors, found[-1][0], None), type):
        return getattr(errors, found[-1][0])(found[-1][1])
    return error


def run_pipeline(config: IngestConfig, out_dir: str) -> dict:
    """Runs (or resumes) the ingestion on Beam with ``config.beam_pipeline_options``; returns the
    summary the pipeline wrote to summary.json."""
    options = PipelineOptions(shlex.split(config.beam_pipeline_options))
    started_at = time.time()
    out_dir = os.path.abspath(out_dir)
    # Here, not on a worker: the demo collection is made, settings and salt are recorded (or
    # checked against the folder's), and a bad setting or missing file stops the run in one line.
    config, _, parse_tasks = metadata_tasks(config, out_dir)
    try:
        with beam.Pipeline(options=options) as pipeline:
            build(pipeline, config, out_dir, parse_tasks, started_at, _workers(options), _launcher(options))
    except errors.DataPipelineError:
        raise
    except Exception as e:
        raise _worker_error(e) from e
    with open(os.path.join(out_dir, layout.SUMMARY_FILE)) as f:
        return json.load(f)
