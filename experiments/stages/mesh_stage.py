"""Stage `mesh`: the adaptive Delaunay mesh on the M1 training photos (paper §3.1.1, Table 1).

The coordinates are those of the M1 training split, decided by the metadata phase of the ingestion
(no image work), so the mesh never sees a photo that M1 validates on. `--mesh_coords` builds it on a
CSV of coordinates instead. `--mesh_build_sample=N` builds on a random sample of N photos and then
populates the cells with all of them without refining, as the paper did for its coarse mesh
(Figure 2).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from experiments.config import RunConfig

log = logging.getLogger(__name__)


def training_coordinates(config: RunConfig, run_dir: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """lat, lon of the photos the mesh is built on, and a description of where they came from."""
    if config.mesh.coords:
        from mesh.coords_csv import read_coords_csv

        coords = read_coords_csv(config.mesh.coords)
        return coords.lat, coords.lon, {"coords_file": str(Path(config.mesh.coords).resolve()),
                                        "rows_total": coords.rows_total,
                                        "rows_skipped": coords.rows_skipped}
    from data_pipelines.ingest import split_coordinates
    from experiments.stages.sources import ingest_config

    lat, lon = split_coordinates(ingest_config(config, run_dir))
    return lat, lon, {"coords_source": f"M1 training split of the {config.data.source} data"}


def run(config: RunConfig, run_dir: Path) -> dict[str, str]:
    from mesh import build_mesh
    from geoloc_tf.run_layout import RunLayout
    from mesh.build import write_mesh_outputs

    lat, lon, source = training_coordinates(config, run_dir)
    m = config.mesh
    started = time.perf_counter()
    if m.build_sample and m.build_sample < len(lat):
        pick = np.random.default_rng(config.data.seed).choice(len(lat), m.build_sample, replace=False)
        built = build_mesh(lat[pick], lon[pick], m.refinement_limit, m.min_examples, m.init_grid)
        mesh = built.populate(lat, lon)
        source["built_on_sample"] = int(m.build_sample)
    else:
        mesh = build_mesh(lat, lon, m.refinement_limit, m.min_examples, m.init_grid)
    seconds = time.perf_counter() - started
    log.info("mesh: %d cells kept of %d triangles, from %d photos, in %.1f s", mesh.num_cells,
             mesh.num_triangles, len(lat), seconds)
    layout = RunLayout(run_dir)
    write_mesh_outputs(mesh, layout.mesh_dir, lat, lon, source, seconds)
    return {name: layout.relative(path) for name, path in (
        ("mesh", layout.mesh), ("geojson", layout.mesh_geojson), ("summary", layout.mesh_summary),
        ("map", layout.mesh_plot))}
