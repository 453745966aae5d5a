"""Ingestion: metadata files + image folder -> sharded TFRecords, per-split tables, summary.json.

    geoloc ingest --metadata=FILE[,FILE...] --images=DIR --out=DIR
    python -m data_pipelines.ingest ...     (the same)

Two phases, both resumable:

1. *Metadata* (``parse``, one process per metadata file): stream every line, keep or count it by
   skip reason, hash user ids with the data set's salt. Then (``plan``) duplicates (first
   occurrence kept, in file order) and the stable splits (``data_pipelines.splits``) are decided
   over all files at once, and each split is cut into shards.
2. *Images* (``shards``, a process pool): a worker reads, decodes and re-encodes each photo of a
   shard and writes it. A rerun with the same settings redoes only unfinished shards, and since
   the plan depends on the metadata and settings alone, the result is byte-identical to an
   uninterrupted run.

Finally the per-split Parquet tables (``tables``), ``manifest.json``, the tfds metadata
(``tfds_metadata``: ``tfds.builder_from_directory(out/records)`` reads the data set) and, last,
``summary.json`` are written (``run``), each atomically. Two engines run these steps: ``local``
(``run``: this machine's process pool) and ``beam`` (``beam_pipeline``: the same functions as
Apache Beam transforms, for DirectRunner, Dataflow, Flink or Spark). ``layout`` names every file;
``settings_record`` keeps the settings a data set was built with (``metadata.json``); ``cli`` is
the command line.
"""

from data_pipelines.ingest.layout import shard_file_name
from data_pipelines.ingest.run import resolve_sources, run_ingestion, split_coordinates

__all__ = ["resolve_sources", "run_ingestion", "shard_file_name", "split_coordinates"]
