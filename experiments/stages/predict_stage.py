"""Stage `predict`: M1's top-k cells for every photo of every split, as Parquet tables.

M2, M3, user averaging, the evaluation and retrieval read these tables, never images
(geoloc_tf.m1.predict_records). Resumable shard by shard.
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from data_pipelines.dataset import load
    from geoloc_tf.m1.predict_records import predict_splits
    from geoloc_tf.run_layout import RunLayout
    from geoloc_tf.saving import load_keras

    layout = RunLayout(run_dir)
    model = load_keras(layout.m1_model)
    paths = predict_splits(
        model, load(str(layout.data_dir)), layout, config.predict, image_size=config.m1.image_size
    )
    return {split: layout.relative(path) for split, path in paths.items()}
