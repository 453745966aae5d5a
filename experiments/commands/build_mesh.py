"""`geoloc build-mesh`: the adaptive Delaunay mesh of a CSV of photo coordinates (§3.1.1, Table 1).

    geoloc build-mesh --coords=FILE.csv --preset=coarse --out=DIR
    geoloc build-mesh --coords=FILE.csv --refinement_limit=5000 --min_examples=500 --out=DIR

Takes the mesh settings under the runner's names without the `mesh_` prefix (`MeshConfig`); a Table 1
preset sets refinement_limit and min_examples unless they are given. Writes DIR/mesh.npz,
mesh.geojson, mesh.png and summary.json (`mesh.build.write_mesh_outputs`) and prints the summary;
with --partition_factors, the same files of each extra partition in DIR/partition_x<factor>/
(`mesh.partitions`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any

from absl import flags

from experiments.commands import Command, require
from experiments.errors import ConfigError
from mesh.config import MeshConfig
from mesh.presets import PRESETS


def _define_inputs(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_string("out", None, "Output folder (created if missing).", flag_values=flag_values)
    flags.DEFINE_enum(
        "preset",
        None,
        sorted(PRESETS),
        "Table 1 preset: coarse 8000/1000, fine "
        "5000/500, fineP 10000/50; --refinement_limit / --min_examples override it.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool("plot", True, "Draw mesh.png (a Figure-2-like map).", flag_values=flag_values)
    flags.DEFINE_integer(
        "seed", 0, "Seed of the --build_sample draw.", lower_bound=0, flag_values=flag_values
    )
    require(flag_values, "out")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, _: list[str]) -> int:
    from mesh.build import build_from_config, build_partitions, write_mesh_outputs
    from mesh.coords_csv import read_coords_csv
    from mesh.partitions import partition_folder

    config: MeshConfig = configs[""]
    if inputs.preset:
        limit, minimum = PRESETS[inputs.preset]
        config = dataclasses.replace(
            config,
            refinement_limit=config.refinement_limit if inputs["refinement_limit"].present else limit,
            min_examples=config.min_examples if inputs["min_examples"].present else minimum,
        )
    elif not (inputs["refinement_limit"].present and inputs["min_examples"].present):
        raise ConfigError("geoloc build-mesh: give --preset, or both --refinement_limit and --min_examples")
    if not config.coords:
        raise ConfigError("geoloc build-mesh: --coords=FILE.csv is required (latitude/longitude columns)")
    coords = read_coords_csv(config.coords)
    print(coords.report(), file=sys.stderr)
    mesh, info, seconds = build_from_config(coords.lat, coords.lon, config, seed=inputs.seed)
    source = {
        "preset": inputs.preset,
        "coords_file": os.path.abspath(config.coords),
        "rows_total": coords.rows_total,
        "rows_skipped": coords.rows_skipped,
        "bad_rows_examples": coords.bad_examples,
    }
    summary = write_mesh_outputs(
        mesh, inputs.out, coords.lat, coords.lon, {**source, **info}, seconds, plot=inputs.plot
    )
    for factor, partition, info, seconds in build_partitions(
        coords.lat, coords.lon, config, seed=inputs.seed
    ):
        folder = os.path.join(inputs.out, partition_folder(factor))
        write_mesh_outputs(
            partition, folder, coords.lat, coords.lon, {**source, **info}, seconds, plot=inputs.plot
        )
    print(json.dumps(summary, indent=2))
    return 0


COMMAND = Command(
    name="build-mesh",
    summary="Build the adaptive Delaunay mesh from a CSV of photo coordinates (§3.1.1, Table 1).",
    sections={"": MeshConfig},
    define_inputs=_define_inputs,
    run=_run,
)
