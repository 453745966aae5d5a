"""GeoJSON export of mesh cells that renders right across the antimeridian and at the poles.

Each triangle becomes a polygon whose edges are densified along the great circle (at most 1 degree
per segment), so that a map drawing straight lines in lon/lat still follows the real edges.
Following RFC 7946 §3.1.9, a cell crossing 180 degrees is cut there into a MultiPolygon; a cell
containing a pole gets a ring running along the pole's latitude. Rings are counter-clockwise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mesh.sphere import xyz_to_lat_lon

if TYPE_CHECKING:
    from mesh.mesh import Mesh

_MAX_SEGMENT_DEG = 1.0


def triangle_ring(
    a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]
) -> list[list[list[tuple[float, float]]]]:
    """Polygons (lists of closed (lon, lat) rings, degrees) for spherical triangle a, b, c (CCW).

    One polygon normally, two when the triangle crosses the antimeridian.
    """
    pts = []
    for u, v in ((a, b), (b, c), (c, a)):
        ang = math.atan2(np.linalg.norm(np.cross(u, v)), float(np.dot(u, v)))
        n = max(1, math.ceil(math.degrees(ang) / _MAX_SEGMENT_DEG))
        t = np.arange(n)[:, None] / n
        s = np.sin(ang) if ang > 0 else 1.0
        seg = (
            (np.sin((1 - t) * ang) * u + np.sin(t * ang) * v) / s if ang > 1e-12 else np.repeat(u[None], n, 0)
        )
        pts.append(seg)
    p = np.concatenate(pts)
    lat, lon = xyz_to_lat_lon(p)
    at_pole = np.abs(lat) > 90.0 - 1e-9
    if at_pole.any():
        # A vertex at a pole has no longitude: draw it as a stretch of the pole's latitude from
        # the longitude of the edge arriving to that of the edge leaving.
        i = int(np.flatnonzero(at_pole)[0])
        n = len(lat)
        lon_in, lon_out = lon[(i - 1) % n], lon[(i + 1) % n]
        lat = np.concatenate([lat[:i], [lat[i], lat[i]], lat[i + 1 :]])
        lon = np.concatenate([lon[:i], [lon_in, lon_out], lon[i + 1 :]])
    lon = np.degrees(np.unwrap(np.radians(lon)))
    normals = (np.cross(a, b), np.cross(b, c), np.cross(c, a))
    ring = list(zip(lon.tolist(), lat.tolist()))
    for pole in (1.0, -1.0):
        if all(n[2] * pole > 0 for n in normals):  # the pole is inside the triangle
            # The unwrapped ring winds once around the pole and ends 360 degrees from its start:
            # close it along the pole's latitude.
            end = lon[0] + 360.0 * np.sign(lon[-1] - lon[0])
            ring = ring + [
                (float(end), float(lat[0])),
                (float(end), 90.0 * pole),
                (float(lon[0]), 90.0 * pole),
            ]
            break
    ring.append(ring[0])
    lons = np.array([q[0] for q in ring])
    shift = -360.0 * math.floor((lons.min() + 180.0) / 360.0)
    ring = [(x + shift, y) for x, y in ring]
    hi = max(x for x, _ in ring)
    if hi <= 180.0 + 1e-9:
        return [[_clamp(ring)]]
    east = _clip(ring, 180.0, keep_below=True)
    west = _clip([(x - 360.0, y) for x, y in ring], -180.0, keep_below=False)
    return [[_clamp(r)] for r in (east, west) if len(r) >= 4]


def _clamp(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(min(180.0, max(-180.0, x)), y) for x, y in ring]


def _clip(ring: list[tuple[float, float]], x0: float, keep_below: bool) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of a closed ring against the vertical line lon = x0."""
    inside = (lambda x: x <= x0) if keep_below else (lambda x: x >= x0)
    out: list[tuple[float, float]] = []
    pts = ring[:-1]
    for i, cur in enumerate(pts):
        prev = pts[i - 1]
        if inside(cur[0]):
            if not inside(prev[0]):
                out.append(_cross(prev, cur, x0))
            out.append(cur)
        elif inside(prev[0]):
            out.append(_cross(prev, cur, x0))
    if out:
        out.append(out[0])
    return out


def _cross(p: tuple[float, float], q: tuple[float, float], x0: float) -> tuple[float, float]:
    t = (x0 - p[0]) / (q[0] - p[0])
    return (x0, p[1] + t * (q[1] - p[1]))


def mesh_to_geojson(mesh: "Mesh", include_dropped: bool = False) -> dict[str, Any]:
    """FeatureCollection: one feature per kept cell (and per dropped triangle if asked), with
    properties ``class_id`` (-1 for dropped), ``count``, ``cell_centroid_lat/lon`` and
    ``imagery_centroid_lat/lon`` (degrees)."""
    tris = list(range(mesh.num_triangles)) if include_dropped else mesh.cell_triangle.tolist()
    return _collection(mesh, tris)


def cells_geojson(mesh: "Mesh", cell_ids) -> dict[str, Any]:
    """FeatureCollection of the kept cells ``cell_ids`` (class ids, in that order), as
    ``mesh_to_geojson`` writes them: what the page of `geoloc serve` draws for an answer."""
    return _collection(mesh, mesh.cell_triangle[np.asarray(cell_ids, np.int64)].tolist())


def _collection(mesh: "Mesh", triangles: list[int]) -> dict[str, Any]:
    cc, ic = mesh.cell_centroids, mesh.imagery_centroids  # computed once, not per triangle
    features = [_feature(mesh, t, cc, ic) for t in triangles]  # a loop over cells, not photos
    return {"type": "FeatureCollection", "features": features}


def _feature(mesh: "Mesh", t: int, cc: np.ndarray, ic: np.ndarray) -> dict[str, Any]:
    """The GeoJSON feature of mesh triangle ``t``; ``cc``, ``ic``: the mesh's cell and imagery
    centroids."""
    cls = int(mesh.triangle_class[t])
    a, b, c = (mesh.vertices[mesh.triangles[t, k]] for k in range(3))
    polys = triangle_ring(a, b, c)
    geom: dict[str, Any]
    if len(polys) == 1:
        geom = {"type": "Polygon", "coordinates": [[list(p) for p in polys[0][0]]]}
    else:
        geom = {"type": "MultiPolygon", "coordinates": [[[list(p) for p in poly[0]]] for poly in polys]}
    props: dict[str, Any] = {"class_id": cls, "count": int(mesh.triangle_counts[t])}
    if cls >= 0:
        props.update(
            cell_centroid_lat=float(cc[cls, 0]),
            cell_centroid_lon=float(cc[cls, 1]),
            imagery_centroid_lat=float(ic[cls, 0]),
            imagery_centroid_lon=float(ic[cls, 1]),
        )
    return {"type": "Feature", "geometry": geom, "properties": props}
