"""Stage `m3`: M2's blocks inside a masked bidirectional LSTM over user albums (§3.3, Figure 3).

It reads M1's prediction tables and the trained M2 (`geoloc_tf.m3.task`).
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m3 import task
    from geoloc_tf.run_layout import RunLayout
    from mesh import Mesh

    layout = RunLayout(run_dir)
    artifacts = task.run(
        layout, Mesh.load(layout.mesh), config.m3, config.m2, seed=config.seed, top_k=config.predict.top_k
    )
    return {name: layout.relative(path) for name, path in artifacts.items()}
