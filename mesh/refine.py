"""Adaptive refinement of the triangle mesh (§3.1.1, Table 1).

Start from the initial equal-area grid; repeatedly count the training points in every triangle,
split every triangle holding more than ``refinement_limit`` points (great-circle midpoints of its
edges become vertices) and re-triangulate the whole vertex set as a spherical Delaunay
triangulation; stop when no triangle is over the limit.

Speed: vertices are only appended, so a triangle that survives a re-triangulation keeps its vertex
triple; its points keep their triangle and only points of triangles that disappeared are located
again. A final full, exact location pass (the same rule as ``Mesh.locate``) recounts everything;
if a point exactly on an edge moved a triangle over the limit, refinement simply continues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mesh.errors import RefinementError
from mesh.geodesy import EARTH_RADIUS_KM
from mesh.locate import QUERY_SUBCELLS_PER_TRIANGLE, Locator
from mesh.sphere import angle_rad, lat_lon_to_xyz
from mesh.triangulation import edge_midpoints, initial_grid_vertices, spherical_delaunay, triangle_keys

log = logging.getLogger(__name__)

#: A triangle whose longest edge is shorter than this is never split, even when over the limit:
#: thousands of photos can share one coordinate (e.g. a camera's default GPS fix) and no split
#: can separate them. 0.05 km keeps Qhull far from its precision limits.
MIN_SPLIT_EDGE_KM: float = 0.05


@dataclass
class Refined:
    """Result of refinement: the triangulation and the exact triangle of every input point."""

    xyz: NDArray[np.float64]  # (V, 3) unit vectors
    tris: NDArray[np.int64]  # (T, 3), CCW, sorted by vertex triple
    point_tri: NDArray[np.int64]  # (N,) triangle of each point, by the location rule
    locator: Locator
    iterations: int
    unsplittable: int  # triangles over the limit but below MIN_SPLIT_EDGE_KM


def longest_edge_km(xyz: NDArray[np.float64], tris: NDArray[np.int64]) -> NDArray[np.float64]:
    """Longest great-circle edge of each triangle, km."""
    a, b, c = xyz[tris[:, 0]], xyz[tris[:, 1]], xyz[tris[:, 2]]
    return EARTH_RADIUS_KM * np.maximum.reduce([angle_rad(a, b), angle_rad(b, c), angle_rad(c, a)])


def refine(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    refinement_limit: int,
    init_grid: int = 31,
    max_iterations: int = 200,
) -> Refined:
    """Run the §3.1.1 refinement on points given in degrees (already validated)."""
    xyz = initial_grid_vertices(init_grid)
    tris = spherical_delaunay(xyz)
    loc = Locator(xyz, tris)
    # Unit vectors of the photos, computed once: every iteration locates many of them again.
    p = np.empty((lat.size, 3))
    for s in range(0, lat.size, 1 << 20):
        p[s : s + (1 << 20)] = lat_lon_to_xyz(lat[s : s + (1 << 20)], lon[s : s + (1 << 20)])
    point_tri = loc.locate(lat, lon, p)
    exact = True
    unsplittable = 0
    for it in range(max_iterations):
        counts = np.bincount(point_tri, minlength=len(tris))
        over = counts > refinement_limit
        if over.any():
            small = longest_edge_km(xyz, tris[over]) < MIN_SPLIT_EDGE_KM
            unsplittable = int(small.sum())
            over[np.flatnonzero(over)[small]] = False
        if not over.any():
            if exact:
                log.info("refinement done after %d iterations: %d triangles", it, len(tris))
                if loc.subcells_per_triangle != QUERY_SUBCELLS_PER_TRIANGLE:
                    loc = Locator(xyz, tris, subcells_per_triangle=QUERY_SUBCELLS_PER_TRIANGLE)
                return Refined(xyz, tris, point_tri, loc, it, unsplittable)
            # Converged on incremental counts: recount everything exactly, then re-check, with
            # the finer locator the mesh keeps for its queries (it also makes this recount faster).
            loc = Locator(xyz, tris, subcells_per_triangle=QUERY_SUBCELLS_PER_TRIANGLE)
            point_tri = loc.locate(lat, lon, p)
            exact = True
            continue
        xyz = np.concatenate([xyz, edge_midpoints(xyz, tris[over])])
        new_tris = spherical_delaunay(xyz)
        old_keys = triangle_keys(tris, len(xyz))
        new_keys = triangle_keys(new_tris, len(xyz))
        order = np.argsort(new_keys)
        pos = np.clip(np.searchsorted(new_keys[order], old_keys), 0, len(new_keys) - 1)
        survived = new_keys[order][pos] == old_keys
        old_to_new = np.where(survived, order[pos], -1)
        point_tri = old_to_new[point_tri]
        tris = new_tris
        loc = Locator(xyz, tris)
        moved = np.flatnonzero(point_tri < 0)
        point_tri[moved] = loc.locate(lat[moved], lon[moved], p[moved])
        exact = False
        log.info(
            "refinement iteration %d: split %d, %d triangles, relocated %d points",
            it + 1,
            int(over.sum()),
            len(tris),
            moved.size,
        )
    raise RefinementError(
        f"refinement did not converge in {max_iterations} iterations "
        f"(refinement_limit={refinement_limit}); expected far fewer"
    )
