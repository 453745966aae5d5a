"""Spherical Delaunay triangulation, the initial 31 x 31 grid and triangle splitting (§3.1.1).

The Delaunay triangulation of points on the sphere is the convex hull of their unit vectors
(every hull facet's circumcircle is the intersection of its plane with the sphere, and no other
point lies beyond that plane), so scipy's Qhull ``ConvexHull`` computes it directly. Vertex
indices are stable: refinement only appends vertices, so a triangle can be recognised across
re-triangulations by its sorted vertex triple.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mesh.errors import MeshError
from mesh.sphere import normalize


def initial_grid_vertices(n: int = 31) -> NDArray[np.float64]:
    """Vertices of the paper's initial "31 x 31 structured grid with equal surface area in each
    triangle" (§3.1.1), as unit vectors of shape (n * n + 2, 3).

    Construction (Lambert's cylindrical equal-area idea: equal steps in z = sin(lat) bound equal
    areas): ``n`` rings of ``n`` vertices each, ring k at height z_k = -1 + (2k + 1) / n, i.e. at the
    middle of n equal-z bins, with longitudes ``(j + (k mod 2) / 2) * 360 / n`` (alternate rings are
    staggered by half a step so the triangles are near-equilateral, not cocircular quads), plus the
    two poles. The band between two adjacent rings then holds area 4 pi * 2 / (2n) and is cut into
    2n triangles; each polar cap (z extent 1/n, half a band) is a fan of n triangles from the pole.
    So all 2 n^2 triangles would have the same area 4 pi / (2 n^2) if their edges followed latitude
    circles; great-circle chords bulge poleward instead, which matters at high latitude. Measured
    for n = 31: the median triangle is within 1 % of 4 pi / 1922, everything with |lat| < 35 deg is
    within 1 %, and the extremes (the two bands next to each pole ring) are 0.74x and 1.25x; the
    Delaunay re-triangulation of the vertex set may also join rings where the grid is anisotropic.
    (The paper gives no more detail: "a 31 x 31 structured grid with equal surface area in each
    triangle".)
    """
    if n < 3:
        raise MeshError(f"init_grid must be >= 3 (got {n}); the paper uses 31")
    k = np.arange(n, dtype=np.float64)
    z = -1.0 + (2.0 * k + 1.0) / n
    j = np.arange(n, dtype=np.float64)
    lon = (j[None, :] + 0.5 * (np.arange(n)[:, None] % 2)) * (2.0 * np.pi / n) - np.pi
    zz = np.broadcast_to(z[:, None], (n, n))
    r = np.sqrt(1.0 - zz * zz)
    ring = np.stack([r * np.cos(lon), r * np.sin(lon), zz], axis=-1).reshape(-1, 3)
    poles = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    return np.concatenate([ring, poles])


def spherical_delaunay(xyz: NDArray[np.float64]) -> NDArray[np.int64]:
    """Triangles (T, 3) of the spherical Delaunay triangulation of unit vectors ``xyz``.

    Each triangle is counter-clockwise seen from outside the sphere (a . (b x c) > 0), rotated so
    its smallest vertex index comes first, and triangles are sorted by that triple, so the output
    depends only on the vertex list (deterministic class numbering).
    """
    from scipy.spatial import ConvexHull  # lazily: keeps "import mesh" fast

    hull = ConvexHull(xyz)
    tris = np.asarray(hull.simplices, dtype=np.int64)
    a, b, c = xyz[tris[:, 0]], xyz[tris[:, 1]], xyz[tris[:, 2]]
    det = np.einsum("ij,ij->i", a, np.cross(b, c))
    flip = det < 0
    tris[flip] = tris[flip][:, [0, 2, 1]]
    if np.any(np.abs(det) <= 1e-300):
        raise MeshError("spherical Delaunay produced a zero-area triangle; vertices too close together")
    # Rotate so the smallest index is first (rotation keeps the orientation).
    first = np.argmin(tris, axis=1)
    rows = np.arange(len(tris))[:, None]
    tris = tris[rows, (first[:, None] + np.arange(3)[None, :]) % 3]
    order = np.lexsort((tris[:, 2], tris[:, 1], tris[:, 0]))
    return tris[order]


def triangle_keys(tris: NDArray[np.integer], num_vertices: int) -> NDArray[np.int64]:
    """One int64 per triangle identifying its vertex set (valid for < 2 million vertices)."""
    s = np.sort(np.asarray(tris, dtype=np.int64), axis=1)
    v = np.int64(num_vertices)
    return (s[:, 0] * v + s[:, 1]) * v + s[:, 2]


def edge_midpoints(xyz: NDArray[np.float64], tris: NDArray[np.integer]) -> NDArray[np.float64]:
    """Unit-vector midpoints of the distinct edges of ``tris`` (the split of §3.1.1 refinement:
    a triangle is divided by adding the great-circle midpoints of its three edges)."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]).astype(np.int64)
    e.sort(axis=1)
    key = np.unique(e[:, 0] * np.int64(len(xyz)) + e[:, 1])
    i, j = np.divmod(key, np.int64(len(xyz)))
    return normalize(xyz[i] + xyz[j])


def edge_normals(xyz: NDArray[np.float64], tris: NDArray[np.integer]) -> NDArray[np.float64]:
    """(T, 9) array: the three edge-plane normals a x b, b x c, c x a of every triangle.

    A point p lies in the closed triangle iff all three n . p >= 0. The two triangles sharing an
    edge get exactly opposite floating-point normals (b x a is computed as -(a x b) bit for bit),
    which is what makes location on shared edges consistent.
    """
    a, b, c = xyz[tris[:, 0]], xyz[tris[:, 1]], xyz[tris[:, 2]]
    return np.concatenate([_cross(a, b), _cross(b, c), _cross(c, a)], axis=1)


def _cross(u: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    # Explicit products (not np.cross/BLAS, which may fuse multiply-adds) so that
    # _cross(v, u) == -_cross(u, v) exactly.
    out = np.empty_like(u)
    out[:, 0] = u[:, 1] * v[:, 2] - u[:, 2] * v[:, 1]
    out[:, 1] = u[:, 2] * v[:, 0] - u[:, 0] * v[:, 2]
    out[:, 2] = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    return out
