"""--mesh_partition_factors through the run: the mesh stage writes each extra, coarser partition into
its RunLayout folder (none when the setting is off), and the m1 stage hands them to train_m1."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_pipelines.config import IngestConfig
from experiments.config import RunConfig
from geoloc_tf.run_layout import RunLayout
from mesh import Mesh
from mesh.config import MeshConfig


@pytest.fixture()
def coords_csv(tmp_path):
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-60, 60, 3000), rng.uniform(-170, 170, 3000)
    path = tmp_path / "coords.csv"
    path.write_text("latitude,longitude\n" + "".join(f"{a:.5f},{b:.5f}\n" for a, b in zip(lat, lon)))
    return str(path)


def run_config(coords: str, factors: tuple[int, ...]) -> RunConfig:
    mesh = MeshConfig(
        refinement_limit=20, min_examples=3, init_grid=4, coords=coords, partition_factors=factors
    )
    return RunConfig(mesh=mesh, data=IngestConfig(source="demo"))


def test_the_mesh_stage_writes_coarser_partitions_and_the_m1_stage_trains_on_them(
    coords_csv, tmp_path, monkeypatch
):
    from experiments.stages import m1_stage, mesh_stage

    run_dir = tmp_path / "run"
    config = run_config(coords_csv, (4, 16))
    artifacts = mesh_stage.run(config, run_dir)
    layout = RunLayout(run_dir)
    main = Mesh.load(layout.mesh)
    cells = [main.num_cells]
    for factor in (4, 16):
        assert artifacts[f"partition_x{factor}"] == f"mesh/partition_x{factor}/mesh.npz"
        partition = Mesh.load(layout.mesh_partition(factor))
        summary = json.loads((layout.mesh_partition_dir(factor) / "summary.json").read_text())
        assert summary["partition_factor"] == factor and summary["cells_kept"] == partition.num_cells
        assert (partition.refinement_limit, partition.min_examples) == (20 * factor, 3 * factor)
        cells.append(partition.num_cells)
    assert cells[0] > cells[1] > cells[2] > 0, cells  # coarser and coarser

    import data_pipelines.dataset
    import geoloc_tf.m1.training

    received = {}
    monkeypatch.setattr(data_pipelines.dataset, "load", lambda path: None)
    monkeypatch.setattr(geoloc_tf.m1.training, "train_m1", lambda *args, **kwargs: received.update(kwargs))
    m1_stage.run(config, run_dir)
    assert [p.num_cells for p in received["partitions"]] == cells[1:]


def test_without_partition_factors_the_mesh_stage_writes_the_mesh_alone(coords_csv, tmp_path):
    from experiments.stages import mesh_stage

    run_dir = tmp_path / "run"
    artifacts = mesh_stage.run(run_config(coords_csv, ()), run_dir)
    assert set(artifacts) == {"mesh", "geojson", "summary", "map"}
    assert sorted(p.name for p in RunLayout(run_dir).mesh_dir.iterdir()) == [
        "mesh.geojson",
        "mesh.npz",
        "mesh.png",
        "summary.json",
    ]
