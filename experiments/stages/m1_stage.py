"""Stage `m1`: Inception-v4 over the mesh cells, trained with appendix A.1's procedure.

Resumable: the training loop checkpoints every --m1_checkpoint_every_steps steps under run_dir/m1/;
a rerun of the same command continues from there (geoloc_tf.m1.training). With
--mesh_partition_factors, the mesh stage's extra partitions give M1 one more softmax head each
(geoloc_tf.m1.partitions); m1.keras still predicts the mesh's cells.
"""

from __future__ import annotations

from pathlib import Path

from experiments.config import RunConfig


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from data_pipelines.dataset import load
    from geoloc_tf.m1.training import train_m1
    from geoloc_tf.run_layout import RunLayout
    from mesh import Mesh

    layout = RunLayout(run_dir)
    train_m1(
        load(str(layout.data_dir)),
        Mesh.load(layout.mesh),
        layout.m1_dir,
        layout.tensorboard("m1"),
        config.m1,
        config.runtime,
        seed=config.seed,
        partitions=[Mesh.load(layout.mesh_partition(factor)) for factor in config.mesh.partition_factors],
    )
    return {"model": layout.relative(layout.m1_model), "history": layout.relative(layout.m1_history)}
