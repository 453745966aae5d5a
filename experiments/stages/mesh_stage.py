"""Stage `mesh`: the adaptive Delaunay mesh on the M1 training photos (paper §3.1.1, Table 1).

The coordinates are those of the M1 training split, decided by the metadata phase of the ingestion
(no image work), so the mesh never sees a photo that M1 validates on. `--mesh_coords` builds it on a
CSV of coordinates instead. `--mesh_build_sample=N` builds on a random sample of N photos and then
populates the cells with all of them without refining, as the paper did for its coarse mesh
(Figure 2). `--mesh_partition_factors` adds extra, coarser partitions built from the same photos
(`mesh.partitions`), each in its own folder of the run's mesh folder, for M1's extra heads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from experiments.config import RunConfig

log = logging.getLogger(__name__)


def training_coordinates(config: RunConfig, run_dir: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """lat, lon of the photos the mesh is built on, and a description of where they came from."""
    if config.mesh.coords:
        from mesh.coords_csv import read_coords_csv

        coords = read_coords_csv(config.mesh.coords)
        return (
            coords.lat,
            coords.lon,
            {
                "coords_file": str(Path(config.mesh.coords).resolve()),
                "rows_total": coords.rows_total,
                "rows_skipped": coords.rows_skipped,
            },
        )
    from data_pipelines.ingest import split_coordinates
    from geoloc_tf.run_layout import RunLayout

    lat, lon = split_coordinates(config.data, str(RunLayout(run_dir).data_dir))
    return lat, lon, {"coords_source": f"M1 training split of the {config.data.source} data"}


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from geoloc_tf.run_layout import RunLayout
    from mesh.build import build_from_config, build_partitions, write_mesh_outputs

    lat, lon, source = training_coordinates(config, run_dir)
    mesh, info, seconds = build_from_config(lat, lon, config.mesh, seed=config.seed)
    log.info(
        "mesh: %d cells kept of %d triangles, from %d photos, in %.1f s",
        mesh.num_cells,
        mesh.num_triangles,
        len(lat),
        seconds,
    )
    layout = RunLayout(run_dir)
    write_mesh_outputs(mesh, layout.mesh_dir, lat, lon, {**source, **info}, seconds)
    artifacts = {
        name: layout.relative(path)
        for name, path in (
            ("mesh", layout.mesh),
            ("geojson", layout.mesh_geojson),
            ("summary", layout.mesh_summary),
            ("map", layout.mesh_plot),
        )
    }
    for factor, partition, info, seconds in build_partitions(lat, lon, config.mesh, seed=config.seed):
        log.info("mesh partition x%d: %d cells kept, in %.1f s", factor, partition.num_cells, seconds)
        folder = layout.mesh_partition_dir(factor)
        write_mesh_outputs(partition, folder, lat, lon, {**source, **info}, seconds)
        artifacts[folder.name] = layout.relative(layout.mesh_partition(factor))
    return artifacts
