"""Stage `export`: SavedModels of M1 (JPEG bytes in), M2 and M3 (M1's top-k + posting time in), each
returning the top-k cells, their probabilities and the predicted lat/lon (imagery centroids, §3.1.2).
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.m1.export import export_m1
    from geoloc_tf.m2.task import TrainedM2
    from geoloc_tf.m3.task import TrainedM3
    from geoloc_tf.run_layout import RunLayout
    from geoloc_tf.saving import load_keras
    from mesh import Mesh

    layout = RunLayout(run_dir)
    points = Mesh.load(layout.mesh).imagery_centroids
    k = config.export.top_k
    export_m1(load_keras(layout.m1_model), points, str(layout.export("m1")), top_k=k)
    TrainedM2.load(layout).export(points, layout.export("m2"), k)
    TrainedM3.load(layout).export(points, layout.export("m3"), k)
    return {name: layout.relative(layout.export(name)) for name in ("m1", "m2", "m3")}
