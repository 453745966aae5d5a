"""Raw geotagged photo collections -> TFRecords, tables, tf.data input, sampler, albums.

Paper: §2 (YFCC100M data), §3.3 (user albums), appendix A (splits, the A.1 curriculum).

Importing this package does not import TensorFlow: the readers, splits, labels, albums, sampler
and ``ingest`` itself are numpy/pandas/PIL; the tf.data modules (``input_pipeline`` and the
``curriculum``, ``parsing``, ``augmentation``, ``device_augment`` it uses) import TensorFlow at
import time, ``records`` and the ingestion's image workers when called.

Written data set (``--out``): ``records/`` (TFRecord shards in tfds naming + dataset_info.json),
``tables/<split>.parquet`` (kept metadata, record order, no pixels), ``manifest.json`` (shards,
counts, sha256), ``metadata.json`` (settings, user-hash salt), ``summary.json`` (counts by skip
reason, written last: its presence means the ingestion finished), ``_work/`` (resume state).

Modules, one job each:
  errors          the package's exceptions
  config          frozen config dataclasses (IngestConfig, SplitConfig, InputConfig, SamplerConfig);
                  IngestConfig + SplitConfig declare the runner's data section (``--data_*``)
  hashing         stable vectorized hashes (splits) and salted user-id hashing (privacy)
  readers/        streaming metadata readers: YFCC100M 23-field, Multimedia Commons 25-field, CSV
  images          decode + re-encode JPEG with a bounded longest side
  records         the TFRecord schema (tf.train.Example), shared by writer, reader and tfds
  ingest/         metadata + images -> sharded TFRecords, per-split Parquet tables, summary.json
                  (``run_ingestion(IngestConfig, out_dir) -> summary dict``; CLI ``geoloc
                  ingest`` = ``python -m data_pipelines.ingest``); resumable, parallel, several
                  machines; one module per phase (parse, plan, shards, tables, tfds_metadata)
  dataset         reading a written data set back (``load(root)``: manifest, tables, shards)
  splits          stable hash splits M1 train / M1 val, M1 val -> M2/M3 train / val
  labels          photo -> mesh cell labels through ``mesh.Mesh.locate``
  sampler         the A.1 curriculum: epoch size growth, class oversampling count**alpha
  curriculum      the sampler's plan as a record stream: shards with labels and copy counts
  parsing         a record's features, and the model's input made from them
  augmentation    Inception-style training augmentation and evaluation crop, on the host
  color           the colour jitter as one affine map, on any array library (host and device)
  device_augment  the host's half of ``augment_on_device``: decode the crops, pack them per
                  batch (the accelerator's half: ``geoloc_tf.m1.device_augment``)
  input_pipeline  tf.data: shards -> batches (``make_dataset``), shuffle, batching, prefetch
  albums          §3.3 user albums of 24 with zero padding and a mask
"""
