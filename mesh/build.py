"""Building a mesh from settings and writing a mesh folder (§3.1.1, Table 1).

`build_from_config` builds the mesh a `MeshConfig` describes (on a random sample first when
`build_sample` is set, as the paper built its coarse mesh on 2M photos, Figure 2);
`write_mesh_outputs` writes, each atomically, ``mesh.npz`` (``Mesh.save`` format), ``mesh.geojson``
(kept cells), ``mesh.png`` (a Figure-2-like map) and ``summary.json`` (cells kept/dropped, photos
per cell, build seconds). The run's mesh stage and ``geoloc build-mesh`` both call them, and
``build_partitions`` for the extra, coarser partitions of ``MeshConfig.partition_factors``
(``mesh.partitions``), each written with ``write_mesh_outputs`` into a folder of its own.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mesh.atomic import write_text_atomic
from mesh.config import MeshConfig
from mesh.errors import MeshError
from mesh.mesh import FORMAT_VERSION, GEOJSON_FILE, MESH_FILE, PLOT_FILE, SUMMARY_FILE, Mesh, build_mesh


def summarize(mesh: Mesh, coords_info: dict[str, Any], build_seconds: float) -> dict[str, Any]:
    """The ``summary.json`` content for a freshly built mesh."""
    counts = mesh.counts
    in_kept = int(counts.sum())
    total = int(mesh.triangle_counts.sum())
    return {
        "refinement_limit": mesh.refinement_limit,
        "min_examples": mesh.min_examples,
        "init_grid": mesh.init_grid,
        "cells_kept": mesh.num_cells,
        "cells_dropped": mesh.num_triangles - mesh.num_cells,
        "triangles": mesh.num_triangles,
        "photos": total,
        "photos_in_kept_cells": in_kept,
        "photos_dropped": total - in_kept,
        "photos_per_cell": {
            "min": int(counts.min()) if counts.size else 0,
            "median": float(np.median(counts)) if counts.size else 0.0,
            "max": int(counts.max()) if counts.size else 0,
        },
        "build_seconds": round(build_seconds, 3),
        "refinement_iterations": mesh.info.get("refinement_iterations"),
        "unsplittable_triangles": mesh.info.get("unsplittable_triangles"),
        "format_version": FORMAT_VERSION,
        **coords_info,
    }


def write_mesh_outputs(
    mesh: Mesh,
    out_dir: str | os.PathLike,
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    source: dict[str, Any],
    build_seconds: float,
    plot: bool = True,
) -> dict[str, Any]:
    """Write ``mesh.npz``, ``mesh.geojson``, ``mesh.png`` (photos ``lat, lon`` as background) and
    ``summary.json`` (``summarize`` plus ``source``, e.g. where the photos came from) into
    ``out_dir``, each atomically; ``summary.json`` last, so its presence means all are complete.
    Returns the summary. Shared by this CLI and the experiments' mesh stage."""
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    summary = summarize(mesh, source, build_seconds)
    mesh.save(os.path.join(out, MESH_FILE))
    write_text_atomic(os.path.join(out, GEOJSON_FILE), json.dumps(mesh.to_geojson()))
    if plot:
        from mesh.plot import plot_mesh

        plot_mesh(mesh, lat, lon, os.path.join(out, PLOT_FILE))
    write_text_atomic(os.path.join(out, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    return summary


def build_from_config(
    lat: NDArray[np.float64], lon: NDArray[np.float64], config: MeshConfig, seed: int = 0
) -> tuple[Mesh, dict[str, Any], float]:
    """The mesh `config` describes, built on photos `lat, lon`; returns it, what to add to its
    summary, and the build's seconds.

    With `config.build_sample` smaller than the photo count, the mesh is built on that many photos
    drawn with `seed`, then populated with all of them without refining (Figure 2).
    """
    started = time.perf_counter()
    info: dict[str, Any] = {}
    if config.build_sample and config.build_sample < len(lat):
        pick = np.random.default_rng(seed).choice(len(lat), config.build_sample, replace=False)
        built = build_mesh(
            lat[pick], lon[pick], config.refinement_limit, config.min_examples, config.init_grid
        )
        mesh = built.populate(lat, lon)
        info["built_on_sample"] = int(config.build_sample)
    else:
        mesh = build_mesh(lat, lon, config.refinement_limit, config.min_examples, config.init_grid)
    return mesh, info, time.perf_counter() - started


def build_partitions(
    lat: NDArray[np.float64], lon: NDArray[np.float64], config: MeshConfig, seed: int = 0
) -> list[tuple[int, Mesh, dict[str, Any], float]]:
    """(factor, mesh, summary additions, seconds) of each extra partition of
    ``config.partition_factors``: ``build_from_config`` of ``config.partition(factor)`` on the same
    photos and, with ``build_sample``, the same sample (the same ``seed``). A partition that keeps
    no cell is an error naming the factor."""
    built = []
    for factor in config.partition_factors:
        mesh, info, seconds = build_from_config(lat, lon, config.partition(factor), seed=seed)
        if mesh.num_cells == 0:
            raise MeshError(
                f"MeshConfig.partition_factors: the partition of factor {factor} keeps no cell "
                f"(min_examples {mesh.min_examples} photos); expected a smaller factor"
            )
        built.append((factor, mesh, {**info, "partition_factor": factor}, seconds))
    return built
