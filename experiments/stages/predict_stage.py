"""Stage `predict`: M1's top-k cells for every photo of every split, as Parquet tables.

M2, M3, user averaging, the evaluation and retrieval read these tables, never images
(geoloc_tf.m1.predict_records). Resumable shard by shard; runs under the run's strategy
(``--runtime_strategy``, the one M1 trained under: tf.distribute on the TensorFlow backend, a
keras.distribution on JAX): on several workers each predicts its own record shards and the chief
joins them.
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from data_pipelines.dataset import load
    from geoloc_tf.m1.predict_records import Replicas, placement, predict_splits, wait_for
    from geoloc_tf.run_layout import RunLayout

    layout = RunLayout(run_dir)
    replicas = Replicas.of(placement(config.runtime.strategy))
    if not replicas.chief:  # the chief writes M1 when training ends
        wait_for([layout.m1_model], "predict: the chief's M1")
    model = replicas.load(layout.m1_model)
    paths = predict_splits(
        model,
        load(str(layout.data_dir)),
        layout,
        config.predict,
        image_size=config.m1.image_size,
        replicas=replicas,
    )
    return {split: layout.relative(path) for split, path in paths.items()}
