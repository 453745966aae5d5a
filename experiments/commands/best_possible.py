"""`geoloc best-possible`: Table 6's "Best Possible" rows of a mesh on held-out photos, as JSON.

geoloc best-possible --mesh=DIR --coords=FILE.csv
"""

from __future__ import annotations

import json
import sys
from typing import Any

from absl import flags

from experiments.commands import Command, require


def _define_inputs(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_string("mesh", None, "Mesh folder (holding mesh.npz) or mesh file.", flag_values=flag_values)
    flags.DEFINE_string(
        "coords", None, "CSV of held-out photos with latitude/longitude columns.", flag_values=flag_values
    )
    require(flag_values, "mesh", "coords")


def _run(_: dict[str, Any], inputs: flags.FlagValues, __: list[str]) -> int:
    from mesh.best_possible import best_possible
    from mesh.coords_csv import read_coords_csv
    from mesh.mesh import Mesh

    mesh = Mesh.load(inputs.mesh)
    coords = read_coords_csv(inputs.coords)
    print(coords.report(), file=sys.stderr)
    table = best_possible(mesh, coords.lat, coords.lon)
    table["rows_skipped"] = coords.rows_skipped
    print(json.dumps(table, indent=2))
    return 0


COMMAND = Command(
    name="best-possible",
    summary="Best possible accuracy of a mesh on held-out photos (Table 6).",
    define_inputs=_define_inputs,
    run=_run,
)
