"""CLI: build a mesh from a CSV of photo coordinates (§3.1.1, Table 1).

    python -m mesh.build --coords=FILE.csv --preset=coarse --out=DIR
    python -m mesh.build --coords=FILE.csv --refinement_limit=5000 --min_examples=500 --out=DIR

Writes, each atomically, into DIR: ``mesh.npz`` (``Mesh.save`` format), ``mesh.geojson`` (kept
cells), ``summary.json`` (cells kept/dropped, photos per cell min/median/max, build seconds) and
``mesh.png`` (a Figure-2-like map). Bad input gives one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mesh.atomic import write_text_atomic
from mesh.errors import MeshError
from mesh.mesh import FORMAT_VERSION, GEOJSON_FILE, MESH_FILE, PLOT_FILE, SUMMARY_FILE, Mesh, build_mesh
from mesh.presets import PRESETS


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m mesh.build`` and ``geoloc build-mesh``; returns the exit status."""
    from mesh.coords_csv import read_coords_csv

    parser = argparse.ArgumentParser(prog="build-mesh", description="Build the adaptive triangle mesh (paper §3.1.1).")
    parser.add_argument("--coords", required=True, help="CSV with latitude/longitude columns (header, any case)")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="Table 1 preset: coarse 8000/1000, fine 5000/500, fineP 10000/50")
    parser.add_argument("--refinement_limit", type=int, help="split a cell holding more photos than this (overrides preset)")
    parser.add_argument("--min_examples", type=int, help="drop a cell holding fewer photos than this (overrides preset)")
    parser.add_argument("--init_grid", type=int, default=31, help="initial grid size (paper: 31)")
    parser.add_argument("--no_plot", action="store_true", help="skip the PNG map")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its usage/error line
        return int(e.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    limit, min_ex = PRESETS.get(args.preset, (None, None)) if args.preset else (None, None)
    limit = args.refinement_limit if args.refinement_limit is not None else limit
    min_ex = args.min_examples if args.min_examples is not None else min_ex
    if limit is None or min_ex is None:
        print("error: give --preset or both --refinement_limit and --min_examples", file=sys.stderr)
        return 2
    try:
        coords = read_coords_csv(args.coords)
        print(coords.report(), file=sys.stderr)
        t0 = time.perf_counter()
        mesh = build_mesh(coords.lat, coords.lon, limit, min_ex, args.init_grid)
        seconds = time.perf_counter() - t0
        summary = write_mesh_outputs(mesh, args.out, coords.lat, coords.lon, {
            "preset": args.preset,
            "coords_file": os.path.abspath(args.coords),
            "rows_total": coords.rows_total,
            "rows_skipped": coords.rows_skipped,
            "bad_rows_examples": coords.bad_examples,
        }, seconds, plot=not args.no_plot)
    except MeshError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e.filename or args.out}: {e.strerror}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
