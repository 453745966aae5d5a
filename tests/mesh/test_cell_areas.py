"""Cell areas in km2 (the probability-mass sets of `geoloc predict` report them), by hand."""

from __future__ import annotations

import math

import numpy as np

from mesh import Mesh, build_mesh
from mesh.geodesy import EARTH_RADIUS_KM

SPHERE_KM2 = 4.0 * math.pi * EARTH_RADIUS_KM**2  # 510.4 M km2 for R = 6372.795 km


def octahedron() -> Mesh:
    """The 8 octants of the sphere as cells: each is 1/8 of the sphere (a right spherical
    triangle with three 90-degree angles: excess pi/2)."""
    vertices = np.array([[1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64)
    north, south = 4, 5
    triangles = [[k, (k + 1) % 4, north] for k in range(4)] + [[(k + 1) % 4, k, south] for k in range(4)]
    return Mesh(
        vertices,
        np.array(triangles),
        np.ones(8, np.int64),
        np.arange(8),
        np.zeros((8, 3)),
        refinement_limit=1,
        min_examples=0,
    )


def test_each_octant_is_an_eighth_of_the_sphere():
    areas = octahedron().cell_areas_km2
    assert areas.shape == (8,)
    np.testing.assert_allclose(areas, SPHERE_KM2 / 8, rtol=1e-12)
    assert abs(areas[0] - 63.8e6) < 0.1e6  # about 63.8 million km2


def test_all_triangles_of_a_real_mesh_cover_the_sphere_and_kept_cells_a_part(make_points):
    lat, lon = make_points(3000, seed=4)
    whole = build_mesh(lat, lon, refinement_limit=300, min_examples=0, init_grid=6)
    assert whole.num_cells == whole.num_triangles  # min_examples=0 keeps every triangle
    np.testing.assert_allclose(whole.cell_areas_km2.sum(), SPHERE_KM2, rtol=1e-9)
    assert (whole.cell_areas_km2 > 0).all()
    kept = build_mesh(lat, lon, refinement_limit=300, min_examples=30, init_grid=6)
    areas = kept.cell_areas_km2
    assert areas.shape == (kept.num_cells,)
    assert 0 < areas.sum() < SPHERE_KM2
