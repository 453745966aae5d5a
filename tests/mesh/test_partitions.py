"""Extra, coarser partitions (``mesh.partitions``, ``MeshConfig.partition_factors``): the parent map
of a hand-made octahedron, its nearest-kept-cell fallback, and the partitions ``build_partitions``
builds from photos."""

from __future__ import annotations

import numpy as np
import pytest

from mesh import Mesh
from mesh.build import build_from_config, build_partitions
from mesh.config import MeshConfig
from mesh.errors import MeshError
from mesh.partitions import parent_cells, partition_folder
from mesh.settings import SettingError

#: The octahedron: the poles and four equator points at longitudes 0, 90, 180, 270.
VERTICES = np.array([[0, 0, 1], [0, 0, -1], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], np.float64)
#: Triangles 0-3: north, between longitudes 90 i and 90 (i + 1); 4-7: the same in the south
#: (counter-clockwise seen from outside).
TRIANGLES = np.array(
    [[2 + i, 2 + (i + 1) % 4, 0] for i in range(4)] + [[2 + (i + 1) % 4, 2 + i, 1] for i in range(4)],
    np.int64,
)


def octahedron(kept: list[int]) -> Mesh:
    """The octahedron keeping triangles ``kept`` as cells (label points: the triangles' centroids)."""
    return Mesh(
        VERTICES,
        TRIANGLES,
        np.full(8, 10),
        np.array(kept, np.int64),
        np.zeros((len(kept), 3)),
        refinement_limit=100,
        min_examples=1,
        init_grid=2,
    )


def test_parent_map_locates_label_points_and_falls_back_to_the_nearest_kept_cell():
    main = octahedron(list(range(8)))
    # The extra partition keeps the northern triangles only: the southern cells' centroids (lat
    # -35.3, lon 45 + 90 i) lie in dropped cells; the nearest kept centroid is the one straight
    # north (lat +35.3, same longitude: 70.5 degrees away; the next ones are 109.5 degrees away).
    extra = octahedron([0, 1, 2, 3])
    np.testing.assert_array_equal(parent_cells(main, extra), [0, 1, 2, 3, 0, 1, 2, 3])
    # Kept cells are numbered in triangle order: keeping 1, 2, 5, 6 (longitudes 90-270) makes
    # cells 0, 1 (north) and 2, 3 (south). Main cells at longitude 45 and 315 are in dropped cells;
    # 45 is nearest to 135 of its own hemisphere (90 degrees of longitude off, same latitude).
    extra = octahedron([1, 2, 5, 6])
    parents = parent_cells(main, extra)
    np.testing.assert_array_equal(parents[[1, 2, 5, 6]], [0, 1, 2, 3])
    assert parents[0] == 0 and parents[3] == 1 and parents[4] == 2 and parents[7] == 3


def test_a_partition_keeping_no_cell_is_refused():
    with pytest.raises(MeshError, match="keeps no cell"):
        parent_cells(octahedron(list(range(8))), octahedron([]))


def photos(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(-60, 60, n), rng.uniform(-170, 170, n)


def test_build_partitions_builds_coarser_meshes_from_the_same_photos():
    lat, lon = photos()
    config = MeshConfig(refinement_limit=20, min_examples=3, init_grid=4, partition_factors=(4, 16))
    main, _, _ = build_from_config(lat, lon, config)
    built = build_partitions(lat, lon, config)
    assert [factor for factor, *_ in built] == [4, 16]
    cells = [main.num_cells] + [mesh.num_cells for _, mesh, _, _ in built]
    assert cells[0] > cells[1] > cells[2] > 0, cells
    for (factor, mesh, info, _), limits in zip(built, [(80, 12), (320, 48)]):
        assert (mesh.refinement_limit, mesh.min_examples) == limits
        assert info["partition_factor"] == factor
        parents = parent_cells(main, mesh)
        assert parents.shape == (main.num_cells,) and 0 <= parents.min() and parents.max() < mesh.num_cells
        # Nearly nested: the photos of a main cell lie in its parent cell (module docstring).
        in_main, in_extra = main.locate(lat, lon), mesh.locate(lat, lon)
        both = (in_main >= 0) & (in_extra >= 0)
        assert np.mean(parents[in_main[both]] == in_extra[both]) > 0.99
    # Off (the paper's single mesh): nothing.
    assert build_partitions(lat, lon, MeshConfig(refinement_limit=20, min_examples=3, init_grid=4)) == []


def test_a_factor_that_leaves_no_cell_is_one_line_naming_the_setting():
    lat, lon = photos(300)
    config = MeshConfig(refinement_limit=100, min_examples=10, init_grid=6, partition_factors=(1000,))
    with pytest.raises(MeshError, match="partition_factors: the partition of factor 1000 keeps no cell"):
        build_partitions(lat, lon, config)


def test_partition_factors_are_checked_and_scale_both_limits():
    assert MeshConfig(partition_factors=(4,)).partition(4) == MeshConfig(
        refinement_limit=32000, min_examples=4000
    )
    with pytest.raises(SettingError, match="partition_factors"):
        MeshConfig(partition_factors=(1,))
    with pytest.raises(SettingError, match="each factor once"):
        MeshConfig(partition_factors=(4, 4))
    assert partition_folder(4) == "partition_x4"


def test_build_mesh_command_writes_each_partition_in_its_folder(tmp_path, capsys):
    from experiments.cli import main as geoloc

    lat, lon = photos()
    coords = tmp_path / "c.csv"
    coords.write_text("lat,lon\n" + "".join(f"{a},{b}\n" for a, b in zip(lat, lon)))
    out = tmp_path / "out"
    args = ["--refinement_limit=20", "--min_examples=3", "--init_grid=4", "--partition_factors=4", "--noplot"]
    assert geoloc(["build-mesh", f"--coords={coords}", f"--out={out}", *args]) == 0
    main, extra = Mesh.load(out / "mesh.npz"), Mesh.load(out / partition_folder(4) / "mesh.npz")
    assert (extra.refinement_limit, extra.min_examples) == (80, 12)
    assert main.num_cells > extra.num_cells > 0
