"""Stage `m2`: the time-adjusting model (§3.2, Table 2) on M1's stored predictions.

It reads M1's prediction tables, never images (Figure 3: M2 starts from M1's top-10 cells); the
model's task module (`geoloc_tf.m2.task`) builds, trains, predicts and saves it.
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m2 import task
    from geoloc_tf.run_layout import RunLayout
    from mesh import Mesh

    layout = RunLayout(run_dir)
    artifacts = task.run(
        layout, Mesh.load(layout.mesh), config.m2, seed=config.seed, top_k=config.predict.top_k
    )
    return {name: layout.relative(path) for name, path in artifacts.items()}
